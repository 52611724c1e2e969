//! LIS3DH register traffic against embedded-hal-mock.

use embedded_hal_mock::eh1::i2c::{Mock, Transaction};
use hearth_firmware::drivers::lis3dh::{
    ADDRESS_SA0_HIGH as A, Config, DataRate, Error, Lis3dh, MilliG, Range, Resolution,
};

#[test]
fn who_am_i_is_checked() {
    let i2c = Mock::new(&[
        Transaction::write_read(A, vec![0x0F], vec![0x33]),
        Transaction::write_read(A, vec![0x0F], vec![0x32]),
    ]);
    let mut l = Lis3dh::new(i2c, A);
    assert_eq!(l.check_id(), Ok(()));
    assert_eq!(l.check_id(), Err(Error::WrongDevice { who_am_i: 0x32 }));
    l.destroy().done();
}

#[test]
fn default_config_is_100_hz_8_g_high_resolution_with_bdu() {
    let i2c = Mock::new(&[
        // ODR 0101, LPen 0, XYZ enabled.
        Transaction::write(A, vec![0x20, 0x57]),
        // BDU 1, BLE 0, FS 10, HR 1: 1010_1000.
        Transaction::write(A, vec![0x23, 0xA8]),
    ]);
    let mut l = Lis3dh::new(i2c, A);
    l.configure(Config::default()).unwrap();
    l.destroy().done();
}

#[test]
fn xyz_read_uses_auto_increment_and_scales_per_mode() {
    // ±8 g high resolution: 12 bits left-justified, 4 mg/digit. x = 250 digits (0x0FA0) = 1000 mg,
    // y = −63 digits (0xFC10) = −252 mg, z = 0.
    let raw = vec![0xA0, 0x0F, 0x10, 0xFC, 0x00, 0x00];
    let i2c = Mock::new(&[
        Transaction::write(A, vec![0x20, 0x57]),
        Transaction::write(A, vec![0x23, 0xA8]),
        Transaction::write_read(A, vec![0xA8], raw.clone()),
        // Low power ±2 g: 8 bits, 16 mg/digit: 0x3E00 → 62 digits → 992 mg.
        Transaction::write(A, vec![0x20, 0x2F]),
        Transaction::write(A, vec![0x23, 0x80]),
        Transaction::write_read(A, vec![0xA8], vec![0x00, 0x3E, 0x00, 0xC2, 0x00, 0x00]),
        // ±16 g normal: 10 bits, 48 mg/digit: 0x0540 → 21 digits → 1008 mg.
        Transaction::write(A, vec![0x20, 0x57]),
        Transaction::write(A, vec![0x23, 0xB0]),
        Transaction::write_read(A, vec![0xA8], vec![0x40, 0x05, 0x00, 0x00, 0x00, 0x00]),
    ]);
    let mut l = Lis3dh::new(i2c, A);
    l.configure(Config::default()).unwrap();
    assert_eq!(
        l.read_mg().unwrap(),
        MilliG {
            x: 1000,
            y: -252,
            z: 0
        }
    );
    l.configure(Config {
        rate: DataRate::Hz10,
        range: Range::G2,
        resolution: Resolution::LowPower,
    })
    .unwrap();
    assert_eq!(
        l.read_mg().unwrap(),
        MilliG {
            x: 992,
            y: -992,
            z: 0
        }
    );
    l.configure(Config {
        rate: DataRate::Hz100,
        range: Range::G16,
        resolution: Resolution::Normal,
    })
    .unwrap();
    assert_eq!(
        l.read_mg().unwrap(),
        MilliG {
            x: 1008,
            y: 0,
            z: 0
        }
    );
    l.destroy().done();
}
