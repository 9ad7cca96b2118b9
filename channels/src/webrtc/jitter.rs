//! The input jitter buffer: puts RTP packets back in sequence order and decides when a
//! missing one is lost.
//!
//! The caller's audio feeds speech detection and transcription, not a loudspeaker, so there
//! is no playout clock to smooth: a packet is released as soon as everything before it has
//! been. A gap is waited for until `depth` later packets have arrived (60 ms at the default
//! depth of three 20 ms packets), then declared lost; the decoder conceals it, using the next
//! packet's in-band FEC when that packet is already here.

use std::collections::BTreeMap;

/// Later packets held while waiting for a missing one, before it is declared lost.
pub const DEFAULT_DEPTH: usize = 3;
/// A forward sequence jump larger than this (2 s of 20 ms packets) restarts the sequence
/// instead of being concealed packet by packet.
const RESYNC_JUMP: i32 = 100;

/// What to decode next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Packet {
        timestamp: u32,
        payload: Vec<u8>,
    },
    /// A packet that never came; `fec` is the packet after it, when present, whose in-band
    /// forward error correction can rebuild it.
    Lost {
        fec: Option<Vec<u8>>,
    },
}

#[derive(Debug, Default)]
pub struct Counters {
    pub received: u64,
    pub lost: u64,
    /// Duplicates and packets that came after their slot was given up.
    pub late: u64,
}

#[derive(Debug)]
pub struct JitterBuffer {
    depth: usize,
    /// Extended sequence number expected next.
    next: Option<u64>,
    held: BTreeMap<u64, (u32, Vec<u8>)>,
    pub counters: Counters,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new(DEFAULT_DEPTH)
    }
}

impl JitterBuffer {
    pub fn new(depth: usize) -> Self {
        Self {
            depth: depth.clamp(1, RESYNC_JUMP as usize),
            next: None,
            held: BTreeMap::new(),
            counters: Counters::default(),
        }
    }

    /// Add a received packet.
    pub fn push(&mut self, seq: u16, timestamp: u32, payload: Vec<u8>) {
        self.counters.received += 1;
        let next = *self.next.get_or_insert(seq as u64);
        // The distance from the expected packet, modulo 2^16, as a signed step.
        let step = seq.wrapping_sub(next as u16) as i16 as i32;
        if step > RESYNC_JUMP {
            self.held.clear();
            let restart = (next & !0xffff) + 0x1_0000 + seq as u64;
            self.next = Some(restart);
            self.held.insert(restart, (timestamp, payload));
            return;
        }
        if step < 0 {
            self.counters.late += 1;
            return;
        }
        let ext = next + step as u64;
        if self.held.insert(ext, (timestamp, payload)).is_some() {
            self.counters.late += 1;
        }
    }

    /// The next frame to decode, if one is due.
    pub fn pop(&mut self) -> Option<Frame> {
        let next = self.next?;
        if let Some((timestamp, payload)) = self.held.remove(&next) {
            self.next = Some(next + 1);
            return Some(Frame::Packet { timestamp, payload });
        }
        if self.held.len() >= self.depth {
            self.counters.lost += 1;
            self.next = Some(next + 1);
            let fec = self.held.get(&(next + 1)).map(|(_, p)| p.clone());
            return Some(Frame::Lost { fec });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn drain(j: &mut JitterBuffer) -> Vec<Frame> {
        std::iter::from_fn(|| j.pop()).collect()
    }

    fn seqs(frames: &[Frame]) -> Vec<Option<u8>> {
        frames
            .iter()
            .map(|f| match f {
                Frame::Packet { payload, .. } => Some(payload[0]),
                Frame::Lost { .. } => None,
            })
            .collect()
    }

    #[test]
    fn reorders_within_depth() {
        let mut j = JitterBuffer::new(3);
        for s in [10u16, 12, 11, 13] {
            j.push(s, s as u32 * 960, vec![s as u8]);
        }
        assert_eq!(
            seqs(&drain(&mut j)),
            vec![Some(10), Some(11), Some(12), Some(13)]
        );
        assert_eq!(j.counters.lost, 0);
    }

    #[test]
    fn declares_a_gap_lost_after_depth_packets_with_fec_from_the_next() {
        let mut j = JitterBuffer::new(3);
        j.push(1, 0, vec![1]);
        assert_eq!(seqs(&drain(&mut j)), vec![Some(1)]);
        j.push(3, 0, vec![3]);
        j.push(4, 0, vec![4]);
        assert!(
            j.pop().is_none(),
            "waits while fewer than depth packets are held"
        );
        j.push(5, 0, vec![5]);
        let frames = drain(&mut j);
        assert_eq!(frames[0], Frame::Lost { fec: Some(vec![3]) });
        assert_eq!(seqs(&frames), vec![None, Some(3), Some(4), Some(5)]);
        j.push(2, 0, vec![2]);
        assert_eq!(
            j.counters.late, 1,
            "the given-up packet is dropped when it turns up"
        );
        assert!(j.pop().is_none());
    }

    #[test]
    fn wraps_around_u16() {
        let mut j = JitterBuffer::new(3);
        for s in [65534u16, 65535, 0, 1] {
            j.push(s, 0, vec![s as u8]);
        }
        assert_eq!(
            seqs(&drain(&mut j)),
            vec![Some(254), Some(255), Some(0), Some(1)]
        );
    }

    proptest! {
        /// Whatever the arrival order, loss and duplication, every packet comes out at most once,
        /// in sequence order, and every slot is accounted for as a packet or a loss.
        #[test]
        fn output_is_ordered_and_complete(
            start in any::<u16>(),
            order in proptest::collection::vec((0u16..40, any::<bool>()), 1..120),
        ) {
            let mut j = JitterBuffer::new(3);
            let mut out = Vec::new();
            for (off, dup) in &order {
                let s = start.wrapping_add(*off);
                j.push(s, 0, off.to_be_bytes().to_vec());
                if *dup { j.push(s, 0, off.to_be_bytes().to_vec()); }
                out.extend(drain(&mut j));
            }
            let mut last: Option<u16> = None;
            for f in &out {
                if let Frame::Packet { payload, .. } = f {
                    let off = u16::from_be_bytes([payload[0], payload[1]]);
                    if let Some(l) = last { prop_assert!(off > l); }
                    last = Some(off);
                }
            }
            let packets = out.iter().filter(|f| matches!(f, Frame::Packet { .. })).count() as u64;
            prop_assert_eq!(packets + j.counters.lost, out.len() as u64);
            prop_assert!(j.held.len() <= RESYNC_JUMP as usize);
        }
    }
}
