//! HX711 bit-banged protocol against embedded-hal-mock pins.

use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::digital::{Mock as Pin, State, Transaction as T};
use hearth_firmware::drivers::hx711::{Error, Gain, Hx711};

/// The pin traffic of reading `raw` (24 bits) followed by `extra` gain pulses.
fn read_traffic(raw: u32, extra: usize) -> (Vec<T>, Vec<T>) {
    let mut sck = Vec::new();
    let mut dout = vec![T::get(State::Low)]; // ready
    for bit in (0..24).rev() {
        sck.push(T::set(State::High));
        sck.push(T::set(State::Low));
        dout.push(T::get(if raw >> bit & 1 == 1 {
            State::High
        } else {
            State::Low
        }));
    }
    for _ in 0..extra {
        sck.push(T::set(State::High));
        sck.push(T::set(State::Low));
    }
    (sck, dout)
}

fn run(raw: u32, gain: Gain, extra: usize) -> i32 {
    let (mut sck_t, dout_t) = read_traffic(raw, extra);
    sck_t.insert(0, T::set(State::Low)); // new() powers up
    let sck = Pin::new(&sck_t);
    let dout = Pin::new(&dout_t);
    let mut hx = Hx711::new(sck, dout, NoopDelay::new(), gain).unwrap();
    let v = hx.read().unwrap();
    let (mut sck, mut dout, _) = hx.destroy();
    sck.done();
    dout.done();
    v
}

#[test]
fn reads_24_bits_msb_first_with_one_pulse_for_a128() {
    assert_eq!(run(0x12_3456, Gain::A128, 1), 0x12_3456);
}

#[test]
fn b32_and_a64_give_two_and_three_extra_pulses() {
    assert_eq!(run(0x00_0001, Gain::B32, 2), 1);
    assert_eq!(run(0x7F_FFFF, Gain::A64, 3), 0x7F_FFFF);
}

#[test]
fn negative_values_are_sign_extended() {
    assert_eq!(run(0x80_0000, Gain::A128, 1), -8_388_608);
    assert_eq!(run(0xFF_FFFF, Gain::A128, 1), -1);
}

#[test]
fn not_ready_does_not_clock() {
    let mut sck = Pin::new(&[T::set(State::Low)]);
    let mut dout = Pin::new(&[T::get(State::High)]);
    let mut hx = Hx711::new(sck.clone(), dout.clone(), NoopDelay::new(), Gain::A128).unwrap();
    assert_eq!(hx.read(), Err(Error::NotReady));
    drop(hx);
    sck.done();
    dout.done();
}

#[test]
fn power_down_holds_clock_high_and_power_up_releases_it() {
    let mut sck = Pin::new(&[T::set(State::Low), T::set(State::High), T::set(State::Low)]);
    let mut dout = Pin::new(&[]);
    let mut hx = Hx711::new(sck.clone(), dout.clone(), NoopDelay::new(), Gain::A128).unwrap();
    hx.power_down().unwrap();
    hx.power_up().unwrap();
    drop(hx);
    sck.done();
    dout.done();
}
