//! MAX30102 register traffic against embedded-hal-mock.

use embedded_hal_mock::eh1::i2c::{Mock, Transaction};
use hearth_firmware::drivers::max30102::{
    ADDRESS as A, AdcRange, Error, Max30102, Mode, PpgSample, PulseWidth, SampleAveraging,
    SampleRate, SpO2Config,
};

#[test]
fn part_id_is_checked() {
    let i2c = Mock::new(&[
        Transaction::write_read(A, vec![0xFF], vec![0x15]),
        Transaction::write_read(A, vec![0xFF], vec![0x11]),
    ]);
    let mut m = Max30102::new(i2c);
    assert_eq!(m.check_part_id(), Ok(()));
    assert_eq!(m.check_part_id(), Err(Error::WrongDevice { part_id: 0x11 }));
    m.destroy().done();
}

#[test]
fn spo2_setup_writes_the_datasheet_bits() {
    let i2c = Mock::new(&[
        Transaction::write(A, vec![0x09, 0x40]),        // RESET
        Transaction::write(A, vec![0x08, 0b0101_1111]), // SMP_AVE=010 (4), rollover 1, A_FULL=1111
        Transaction::write(A, vec![0x09, 0x03]),        // SpO2 mode
        // ADC 4096 nA (01), 100 Hz (001), 411 µs (11): 0 01 001 11.
        Transaction::write(A, vec![0x0A, 0b0010_0111]),
        Transaction::write(A, vec![0x0C, 0x24]),
        Transaction::write(A, vec![0x0D, 0x24]),
        Transaction::write(A, vec![0x04, 0x00]),
        Transaction::write(A, vec![0x05, 0x00]),
        Transaction::write(A, vec![0x06, 0x00]),
        Transaction::write(A, vec![0x09, 0x83]), // shutdown keeps the mode
    ]);
    let mut m = Max30102::new(i2c);
    m.reset().unwrap();
    m.set_fifo_config(SampleAveraging::Four, true, 15).unwrap();
    m.set_mode(Mode::SpO2).unwrap();
    m.set_spo2_config(SpO2Config {
        range: AdcRange::Na4096,
        rate: SampleRate::Hz100,
        pulse_width: PulseWidth::Us411,
    })
    .unwrap();
    m.set_led_currents(0x24, 0x24).unwrap();
    m.clear_fifo().unwrap();
    m.shutdown(Mode::SpO2).unwrap();
    m.destroy().done();
}

#[test]
fn fifo_read_takes_waiting_samples_in_bursts_of_eight() {
    // WR=10, OVF=0, RD=0 → 10 waiting; the caller has room for 10: one burst of 8, one of 2.
    let sample = |red: u32, ir: u32| {
        [
            (red >> 16) as u8,
            (red >> 8) as u8,
            red as u8,
            (ir >> 16) as u8,
            (ir >> 8) as u8,
            ir as u8,
        ]
    };
    let mut burst1 = Vec::new();
    for k in 0..8 {
        burst1.extend_from_slice(&sample(100_000 + k, 120_000 + k));
    }
    let mut burst2 = Vec::new();
    burst2.extend_from_slice(&sample(0x3_FFFF, 1));
    // Bits above 18 are don't-care and masked off.
    burst2.extend_from_slice(&[0xFC, 0x00, 0x05, 0x00, 0x00, 0x07]);
    let i2c = Mock::new(&[
        Transaction::write_read(A, vec![0x04], vec![10, 0, 0]),
        Transaction::write_read(A, vec![0x07], burst1),
        Transaction::write_read(A, vec![0x07], burst2),
    ]);
    let mut m = Max30102::new(i2c);
    let mut out = [PpgSample::default(); 12];
    assert_eq!(m.read_fifo(&mut out).unwrap(), 10);
    assert_eq!(
        out[0],
        PpgSample {
            red: 100_000,
            ir: 120_000
        }
    );
    assert_eq!(
        out[7],
        PpgSample {
            red: 100_007,
            ir: 120_007
        }
    );
    assert_eq!(
        out[8],
        PpgSample {
            red: 0x3_FFFF,
            ir: 1
        }
    );
    assert_eq!(out[9], PpgSample { red: 5, ir: 7 });
    assert_eq!(out[10], PpgSample::default());
    m.destroy().done();
}

#[test]
fn fifo_pointer_wraps_and_overflow_means_full() {
    let i2c = Mock::new(&[
        // WR=3, RD=30: 5 waiting across the wrap.
        Transaction::write_read(A, vec![0x04], vec![3, 0, 30]),
        // Overflowed: pointers equal but the FIFO is full (32).
        Transaction::write_read(A, vec![0x04], vec![7, 4, 7]),
        // Empty.
        Transaction::write_read(A, vec![0x04], vec![7, 0, 7]),
    ]);
    let mut m = Max30102::new(i2c);
    assert_eq!(m.available().unwrap(), (5, 0));
    assert_eq!(m.available().unwrap(), (32, 4));
    let mut out = [PpgSample::default(); 4];
    assert_eq!(m.read_fifo(&mut out).unwrap(), 0);
    m.destroy().done();
}

#[test]
fn fifo_read_stops_at_the_callers_buffer() {
    let i2c = Mock::new(&[
        Transaction::write_read(A, vec![0x04], vec![20, 0, 0]),
        Transaction::write_read(A, vec![0x07], vec![0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4]),
    ]);
    let mut m = Max30102::new(i2c);
    let mut out = [PpgSample::default(); 2];
    assert_eq!(m.read_fifo(&mut out).unwrap(), 2);
    assert_eq!(
        out,
        [PpgSample { red: 1, ir: 2 }, PpgSample { red: 3, ir: 4 }]
    );
    m.destroy().done();
}
