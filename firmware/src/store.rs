//! Store-and-forward: encoded frames kept until the hub acknowledges them, and a sequence counter that survives
//! reset.
//!
//! [`FrameQueue`] is a fixed ring of `SLOTS` encoded frames (each up to [`MAX_ENCODED_LEN`] bytes). A frame leaves
//! the ring only when the hub's authenticated ack frame says every sequence number up to and including its own is
//! committed to the hub's database (architecture invariant 1, `docs/protocol/frame.md`). When the ring is full the
//! OLDEST frame is dropped to make room and [`FrameQueue::dropped`] counts it — nothing is lost silently, and the
//! newest readings (the ones a clinician acts on) are kept.
//!
//! [`SeqCounter`] hands out sequence numbers that never repeat under one key, across resets, while writing its
//! [`SeqStore`] only once per [`SeqCounter::BLOCK`] numbers (flash wear): the store holds an upper bound of every
//! number handed out, and after a reset counting resumes from that bound, skipping at most one block.

use hearth_protocol::frame::{self, DeviceKey, FrameError, MAX_ENCODED_LEN};

/// One stored frame.
#[derive(Clone, Copy, Debug)]
struct Slot {
    seq: u32,
    len: u8,
    bytes: [u8; MAX_ENCODED_LEN],
}

const EMPTY: Slot = Slot {
    seq: 0,
    len: 0,
    bytes: [0; MAX_ENCODED_LEN],
};

/// Why a frame was not queued or an ack not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QueueError {
    /// Longer than [`MAX_ENCODED_LEN`] or empty: not an encoded frame.
    BadLength(usize),
    /// Sequence numbers must increase; this one is not above the newest queued.
    SeqNotIncreasing { seq: u32, newest: u32 },
    /// The ack did not decode or verify.
    Ack(FrameError),
    /// An authentic ack for another device id.
    AckForOtherDevice,
    /// The ack names a sequence number never queued (above the newest): ignored.
    AckAhead { acked: u32, newest: u32 },
}

/// What [`FrameQueue::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pushed {
    Stored,
    /// Stored, after dropping the oldest unacknowledged frame (its sequence number).
    DroppedOldest(u32),
}

/// A bounded ring of encoded frames awaiting the hub's acknowledgement.
#[derive(Clone, Debug)]
pub struct FrameQueue<const SLOTS: usize> {
    slots: [Slot; SLOTS],
    /// Index of the oldest frame.
    head: usize,
    len: usize,
    /// Frames at positions `< sent` (from `head`) were written out since the last [`FrameQueue::rewind`].
    sent: usize,
    newest: Option<u32>,
    acked: Option<u32>,
    dropped: u32,
}

impl<const SLOTS: usize> Default for FrameQueue<SLOTS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SLOTS: usize> FrameQueue<SLOTS> {
    pub const fn new() -> Self {
        FrameQueue {
            slots: [EMPTY; SLOTS],
            head: 0,
            len: 0,
            sent: 0,
            newest: None,
            acked: None,
            dropped: 0,
        }
    }

    /// Frames waiting for an ack.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frames dropped because the ring was full (saturating).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Highest sequence number the hub has acknowledged.
    pub fn acked(&self) -> Option<u32> {
        self.acked
    }

    /// Queues an encoded frame (as [`frame::encode_frame`] wrote it) under its sequence number.
    pub fn push(&mut self, seq: u32, encoded: &[u8]) -> Result<Pushed, QueueError> {
        if encoded.is_empty() || encoded.len() > MAX_ENCODED_LEN || SLOTS == 0 {
            return Err(QueueError::BadLength(encoded.len()));
        }
        if let Some(newest) = self.newest.filter(|&n| seq <= n) {
            return Err(QueueError::SeqNotIncreasing { seq, newest });
        }
        let mut result = Pushed::Stored;
        if self.len == SLOTS {
            let old = self.slots.get(self.head).map_or(0, |s| s.seq);
            self.pop_front();
            self.dropped = self.dropped.saturating_add(1);
            result = Pushed::DroppedOldest(old);
        }
        let idx = (self.head + self.len) % SLOTS;
        if let Some(slot) = self.slots.get_mut(idx) {
            slot.seq = seq;
            slot.len = encoded.len() as u8;
            if let Some(dst) = slot.bytes.get_mut(..encoded.len()) {
                dst.copy_from_slice(encoded);
            }
        }
        self.len += 1;
        self.newest = Some(seq);
        Ok(result)
    }

    fn pop_front(&mut self) {
        if self.len > 0 {
            self.head = (self.head + 1) % SLOTS;
            self.len -= 1;
            self.sent = self.sent.saturating_sub(1);
        }
    }

    fn get(&self, pos: usize) -> Option<(u32, &[u8])> {
        if pos >= self.len {
            return None;
        }
        let s = self.slots.get((self.head + pos) % SLOTS)?;
        Some((s.seq, s.bytes.get(..s.len as usize)?))
    }

    /// The oldest queued frame.
    pub fn oldest(&self) -> Option<(u32, &[u8])> {
        self.get(0)
    }

    /// The next frame not yet sent since the last [`FrameQueue::rewind`]; call [`FrameQueue::mark_sent`] once it is
    /// written out.
    pub fn next_unsent(&self) -> Option<(u32, &[u8])> {
        self.get(self.sent)
    }

    /// Frames sent (since the last rewind) and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.sent
    }

    pub fn mark_sent(&mut self) {
        self.sent = (self.sent + 1).min(self.len);
    }

    /// Makes every queued frame unsent again (no ack came in time: send them all again; the hub acks repeats).
    pub fn rewind(&mut self) {
        self.sent = 0;
    }

    /// Releases every frame with `seq <= acked`. Acks only move forward: an older ack changes nothing.
    pub fn ack(&mut self, acked: u32) -> Result<usize, QueueError> {
        let newest = self.newest.unwrap_or(0);
        if self.newest.is_none() || acked > newest {
            return Err(QueueError::AckAhead { acked, newest });
        }
        if self.acked.is_some_and(|a| a >= acked) {
            return Ok(0);
        }
        self.acked = Some(acked);
        let mut released = 0;
        while self.oldest().is_some_and(|(seq, _)| seq <= acked) {
            self.pop_front();
            released += 1;
        }
        Ok(released)
    }

    /// Decodes and verifies the hub's ack frame (with or without its `0x00`), checks it names `device_id`, and
    /// applies it. Returns the number of frames released.
    pub fn on_ack_frame(
        &mut self,
        bytes: &[u8],
        key: &DeviceKey,
        device_id: &str,
    ) -> Result<usize, QueueError> {
        let ack = frame::decode_ack(bytes, key).map_err(QueueError::Ack)?;
        if ack.device_id.as_str() != device_id {
            return Err(QueueError::AckForOtherDevice);
        }
        self.ack(ack.seq)
    }
}

/// Persistent storage of the sequence counter's reserved bound.
pub trait SeqStore {
    type Error;
    /// The stored bound, or `None` if nothing valid was ever stored (first boot, or the store was corrupted).
    fn load(&mut self) -> Result<Option<u32>, Self::Error>;
    /// Stores a new bound; must be durable before it returns.
    fn store(&mut self, bound: u32) -> Result<(), Self::Error>;
}

/// A [`SeqStore`] in ordinary RAM: for tests, and as the shape of a board's no-init RAM store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RamSeqStore {
    pub value: Option<u32>,
    /// Number of `store` calls (a flash store's wear).
    pub writes: u32,
}

impl SeqStore for RamSeqStore {
    type Error = core::convert::Infallible;
    fn load(&mut self) -> Result<Option<u32>, Self::Error> {
        Ok(self.value)
    }
    fn store(&mut self, bound: u32) -> Result<(), Self::Error> {
        self.value = Some(bound);
        self.writes = self.writes.wrapping_add(1);
        Ok(())
    }
}

/// Why no sequence number could be handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SeqError<E> {
    Store(E),
    /// Every `u32` is used up under this key: re-provision with a new key.
    Exhausted,
}

/// Sequence numbers that never repeat across resets, persisted in blocks.
#[derive(Debug)]
pub struct SeqCounter<S> {
    store: S,
    next: u32,
    /// Every number below this is covered by the stored bound.
    reserved: u32,
}

impl<S: SeqStore> SeqCounter<S> {
    /// Numbers reserved per store write.
    pub const BLOCK: u32 = 64;

    /// Resumes from the stored bound (or starts at 1 on first boot; 0 is never used so an ack of 0 is meaningless).
    pub fn new(mut store: S) -> Result<Self, SeqError<S::Error>> {
        let start = store.load().map_err(SeqError::Store)?.unwrap_or(1).max(1);
        Ok(SeqCounter {
            store,
            next: start,
            reserved: start,
        })
    }

    /// The next sequence number; writes the store when a new block must be reserved.
    pub fn next_seq(&mut self) -> Result<u32, SeqError<S::Error>> {
        if self.next == u32::MAX {
            return Err(SeqError::Exhausted);
        }
        if self.next >= self.reserved {
            let bound = self.next.saturating_add(Self::BLOCK);
            self.store.store(bound).map_err(SeqError::Store)?;
            self.reserved = bound;
        }
        let n = self.next;
        self.next += 1;
        Ok(n)
    }

    /// The number [`SeqCounter::next_seq`] will hand out next (for a board's status line).
    pub fn peek(&self) -> u32 {
        self.next
    }

    /// Gives the store back.
    pub fn destroy(self) -> S {
        self.store
    }
}
