//! Store-and-forward: the frame ring, acks and the persistent sequence counter.

use hearth_firmware::store::{FrameQueue, Pushed, QueueError, RamSeqStore, SeqCounter};
use hearth_protocol::frame::{self, AckFrame, DeviceKey, FrameError, MAX_ENCODED_ACK_LEN};

fn key() -> DeviceKey {
    let mut k = [0u8; 32];
    k.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    DeviceKey::new(k)
}

fn ack_bytes(device: &str, seq: u32, key: &DeviceKey) -> Vec<u8> {
    let ack = AckFrame {
        device_id: frame::device_id(device).unwrap(),
        seq,
    };
    let mut buf = [0u8; MAX_ENCODED_ACK_LEN];
    let n = frame::encode_ack(&ack, key, &mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn frames_stay_until_acked_and_an_ack_releases_everything_up_to_its_seq() {
    let mut q = FrameQueue::<4>::new();
    for seq in 1..=3 {
        assert_eq!(q.push(seq, &[seq as u8; 10]), Ok(Pushed::Stored));
    }
    assert_eq!(q.ack(2), Ok(2));
    assert_eq!(q.len(), 1);
    assert_eq!(q.oldest(), Some((3, &[3u8; 10][..])));
    // Acks only move forward.
    assert_eq!(q.ack(1), Ok(0));
    assert_eq!(q.len(), 1);
    assert_eq!(q.acked(), Some(2));
}

#[test]
fn when_full_the_oldest_is_dropped_and_counted() {
    let mut q = FrameQueue::<3>::new();
    for seq in 1..=3 {
        q.push(seq, &[1]).unwrap();
    }
    assert_eq!(q.push(4, &[4]), Ok(Pushed::DroppedOldest(1)));
    assert_eq!(q.push(5, &[5]), Ok(Pushed::DroppedOldest(2)));
    assert_eq!(q.dropped(), 2);
    assert_eq!(q.len(), 3);
    assert_eq!(q.oldest().unwrap().0, 3);
}

#[test]
fn bad_pushes_and_acks_are_refused() {
    let mut q = FrameQueue::<3>::new();
    assert_eq!(
        q.ack(1),
        Err(QueueError::AckAhead {
            acked: 1,
            newest: 0
        })
    );
    assert_eq!(q.push(1, &[]), Err(QueueError::BadLength(0)));
    assert_eq!(q.push(1, &[0; 123]), Err(QueueError::BadLength(123)));
    q.push(5, &[1]).unwrap();
    assert_eq!(
        q.push(5, &[1]),
        Err(QueueError::SeqNotIncreasing { seq: 5, newest: 5 })
    );
    assert_eq!(
        q.ack(6),
        Err(QueueError::AckAhead {
            acked: 6,
            newest: 5
        })
    );
    assert_eq!(q.len(), 1);
}

#[test]
fn unsent_cursor_survives_acks_drops_and_rewinds() {
    let mut q = FrameQueue::<3>::new();
    for seq in 1..=3 {
        q.push(seq, &[seq as u8]).unwrap();
    }
    assert_eq!(q.next_unsent().unwrap().0, 1);
    q.mark_sent();
    q.mark_sent();
    assert_eq!(q.next_unsent().unwrap().0, 3);
    q.ack(1).unwrap();
    assert_eq!(q.next_unsent().unwrap().0, 3);
    q.mark_sent();
    assert_eq!(q.next_unsent(), None);
    q.rewind();
    assert_eq!(q.next_unsent().unwrap().0, 2);
}

#[test]
fn authentic_ack_frames_release_forged_and_foreign_ones_do_not() {
    let k = key();
    let mut q = FrameQueue::<4>::new();
    for seq in 10..=12 {
        q.push(seq, &[1, 2, 3]).unwrap();
    }
    let other_key = DeviceKey::new([7; 32]);
    assert!(matches!(
        q.on_ack_frame(&ack_bytes("dev-0001", 12, &other_key), &k, "dev-0001"),
        Err(QueueError::Ack(FrameError::WrongKey { .. }))
    ));
    assert_eq!(
        q.on_ack_frame(&ack_bytes("dev-0002", 12, &k), &k, "dev-0001"),
        Err(QueueError::AckForOtherDevice)
    );
    let mut tampered = ack_bytes("dev-0001", 12, &k);
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    assert!(matches!(
        q.on_ack_frame(&tampered, &k, "dev-0001"),
        Err(QueueError::Ack(_))
    ));
    assert_eq!(q.len(), 3);
    assert_eq!(
        q.on_ack_frame(&ack_bytes("dev-0001", 11, &k), &k, "dev-0001"),
        Ok(2)
    );
    assert_eq!(q.oldest().unwrap().0, 12);
}

#[test]
fn sequence_numbers_never_repeat_across_resets_and_store_writes_are_blocked() {
    let mut counter = SeqCounter::new(RamSeqStore::default()).unwrap();
    let first: Vec<u32> = (0..100).map(|_| counter.next_seq().unwrap()).collect();
    assert_eq!(first, (1..=100).collect::<Vec<_>>());
    let store = counter.destroy();
    // Two reservations of 64 for 100 numbers.
    assert_eq!(store.writes, 2);
    assert_eq!(store.value, Some(129));
    // "Reset": a new counter over the same store resumes above everything handed out.
    let mut counter = SeqCounter::new(store).unwrap();
    let n = counter.next_seq().unwrap();
    assert_eq!(n, 129);
    assert!(n > 100);
}

#[test]
fn a_counter_at_the_end_of_u32_refuses_rather_than_wrapping() {
    let store = RamSeqStore {
        value: Some(u32::MAX - 1),
        writes: 0,
    };
    let mut c = SeqCounter::new(store).unwrap();
    assert_eq!(c.next_seq().unwrap(), u32::MAX - 1);
    assert!(c.next_seq().is_err());
}
