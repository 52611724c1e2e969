//! TMP102/TMP105 register traffic against embedded-hal-mock.

use embedded_hal::i2c::ErrorKind;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction};
use hearth_firmware::drivers::tmp1xx::{
    Config, DEFAULT_ADDRESS as A, Error, Resolution, Temperature, Tmp1xx, Variant,
};
use hearth_protocol::Quantity;

#[test]
fn tmp105_configure_selects_12_bits_in_its_one_byte_register() {
    let i2c = Mock::new(&[Transaction::write(A, vec![0x01, 0b0110_0000])]);
    let mut t = Tmp1xx::new(i2c, A, Variant::Tmp105);
    t.configure(Config::default()).unwrap();
    t.destroy().done();
}

#[test]
fn tmp105_shutdown_at_9_bits() {
    let i2c = Mock::new(&[Transaction::write(A, vec![0x01, 0b0000_0001])]);
    let mut t = Tmp1xx::new(i2c, A, Variant::Tmp105);
    t.configure(Config {
        resolution: Resolution::Bits9,
        shutdown: true,
    })
    .unwrap();
    t.destroy().done();
}

#[test]
fn tmp102_configure_writes_two_bytes_keeping_normal_mode_at_4_hz() {
    let i2c = Mock::new(&[Transaction::write(A, vec![0x01, 0x60, 0xA0])]);
    let mut t = Tmp1xx::new(i2c, A, Variant::Tmp102);
    t.configure(Config::default()).unwrap();
    t.destroy().done();
}

#[test]
fn reads_temperature_register_and_scales_0_0625_per_lsb() {
    // 38.5 °C = 616 × 0.0625 = 0x268 → left-justified 0x2680.
    let i2c = Mock::new(&[
        Transaction::write_read(A, vec![0x00], vec![0x26, 0x80]),
        Transaction::write_read(A, vec![0x01], vec![0x60]),
    ]);
    let mut t = Tmp1xx::new(i2c, A, Variant::Tmp105);
    let temp = t.read_temperature().unwrap();
    assert_eq!(temp, Temperature { sixteenths: 616 });
    assert_eq!(temp.celsius(), Quantity::new(385, -1));
    assert_eq!(temp.milli_celsius(), 38_500);
    assert_eq!(t.read_config().unwrap(), 0x60);
    t.destroy().done();
}

#[test]
fn negative_and_fractional_temperatures_keep_sign_and_precision() {
    // Datasheet examples: −25 °C = 0xE70 (12-bit) → 0xE700; 0.0625 °C = 0x001 → 0x0010; −0.25 °C = 0xFFC → 0xFFC0.
    assert_eq!(Temperature::from_register([0xE7, 0x00]).sixteenths, -400);
    assert_eq!(
        Temperature::from_register([0xE7, 0x00]).celsius(),
        Quantity::new(-25, 0)
    );
    assert_eq!(
        Temperature::from_register([0x00, 0x10]).celsius(),
        Quantity::new(625, -4)
    );
    assert_eq!(
        Temperature::from_register([0xFF, 0xC0]).celsius(),
        Quantity::new(-25, -2)
    );
    // 127.9375 °C = 0x7FF → 0x7FF0.
    assert_eq!(
        Temperature::from_register([0x7F, 0xF0]).celsius(),
        Quantity::new(1_279_375, -4)
    );
}

#[test]
fn bus_error_is_wrapped() {
    let i2c = Mock::new(&[
        Transaction::write_read(A, vec![0x00], vec![0, 0]).with_error(ErrorKind::Other)
    ]);
    let mut t = Tmp1xx::new(i2c, A, Variant::Tmp105);
    assert_eq!(t.read_temperature(), Err(Error::I2c(ErrorKind::Other)));
    t.destroy().done();
}
