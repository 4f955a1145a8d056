//! The primary's bounded in-memory tail: the frames of its current epoch, in sequence
//! order, so a follower that missed some (a lost answer, a restart, a gap) gets them
//! again from its position. The oldest frames leave when the tail exceeds its byte bound;
//! a follower behind the tail's start gets a checkpoint (note 014, "Checkpoint catch-up"),
//! during which the tail keeps every frame from the checkpoint's position on (its floor).

use std::collections::VecDeque;

use prost::Message;
use vecshard_proto::internal::v1 as pb;

/// Items (points or keys) in a frame.
pub fn frame_len(f: &pb::ReplicaFrame) -> u64 {
    (f.points.len() + f.keys.len()) as u64
}

/// Why the tail cannot serve a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The position is before the tail's first frame.
    Behind {
        /// The tail's first sequence number.
        start: u64,
    },
    /// The position is past the primary's last write (the follower holds writes this
    /// primary never sequenced).
    Ahead {
        /// One past the primary's last sequence number.
        end: u64,
    },
}

/// The frames of the current epoch still held.
#[derive(Debug)]
pub struct Tail {
    frames: VecDeque<pb::ReplicaFrame>,
    bytes: usize,
    max_bytes: usize,
    /// First sequence number the tail holds (or would hold, when empty).
    start: u64,
    /// One past the last sequence number pushed.
    end: u64,
    /// Frames holding this sequence number or later stay, whatever the byte bound (a
    /// follower catching up from a checkpoint resumes there).
    floor: Option<u64>,
}

impl Tail {
    /// An empty tail whose first frame will start at `next_seq`, holding at most
    /// `max_bytes` of encoded frames (always at least the newest frame).
    pub fn new(next_seq: u64, max_bytes: usize) -> Self {
        Tail {
            frames: VecDeque::new(),
            bytes: 0,
            max_bytes,
            start: next_seq,
            end: next_seq,
            floor: None,
        }
    }

    /// Keep every frame from sequence number `floor` on (`None`: only the byte bound).
    pub fn set_floor(&mut self, floor: Option<u64>) {
        self.floor = floor;
    }

    /// One past the last sequence number pushed.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Append the next frame; it must continue the tail exactly.
    pub fn push(&mut self, frame: pb::ReplicaFrame) {
        debug_assert_eq!(frame.first_seq, self.end, "frames are pushed in order");
        self.end = frame.first_seq + frame_len(&frame);
        self.bytes += frame.encoded_len();
        self.frames.push_back(frame);
        while self.bytes > self.max_bytes && self.frames.len() > 1 {
            let front_end = self
                .frames
                .front()
                .map_or(0, |f| f.first_seq + frame_len(f));
            if self.floor.is_some_and(|floor| front_end > floor) {
                break;
            }
            if let Some(old) = self.frames.pop_front() {
                self.bytes -= old.encoded_len();
                self.start = old.first_seq + frame_len(&old);
            }
        }
    }

    /// Frames from sequence number `from` on (starting with the frame that holds it), up
    /// to about `max_bytes` (at least one frame); empty when `from` is the end.
    pub fn from(&self, from: u64, max_bytes: usize) -> Result<Vec<pb::ReplicaFrame>, Missing> {
        if from < self.start {
            return Err(Missing::Behind { start: self.start });
        }
        if from > self.end {
            return Err(Missing::Ahead { end: self.end });
        }
        let first = self
            .frames
            .partition_point(|f| f.first_seq + frame_len(f) <= from);
        let mut out = Vec::new();
        let mut size = 0;
        for f in self.frames.iter().skip(first) {
            if !out.is_empty() && size + f.encoded_len() > max_bytes {
                break;
            }
            size += f.encoded_len();
            out.push(f.clone());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vecshard_proto::v1 as pb1;

    fn frame(first_seq: u64, keys: u64) -> pb::ReplicaFrame {
        pb::ReplicaFrame {
            epoch: 1,
            first_seq,
            points: Vec::new(),
            keys: (0..keys)
                .map(|k| vecshard_model::proto::key_to_proto(&vecshard_engine::Key::Int(k)))
                .collect::<Vec<pb1::Key>>(),
        }
    }

    #[test]
    fn frames_are_served_from_a_position_and_the_oldest_leave_first() {
        let mut t = Tail::new(5, 1 << 20);
        assert_eq!(t.from(5, 1 << 20).unwrap(), vec![]);
        t.push(frame(5, 3)); // 5..=7
        t.push(frame(8, 1)); // 8
        t.push(frame(9, 2)); // 9..=10
        assert_eq!(t.end(), 11);
        let firsts = |v: Vec<pb::ReplicaFrame>| v.iter().map(|f| f.first_seq).collect::<Vec<_>>();
        assert_eq!(firsts(t.from(5, 1 << 20).unwrap()), vec![5, 8, 9]);
        assert_eq!(firsts(t.from(8, 1 << 20).unwrap()), vec![8, 9]);
        // A position inside a frame starts with that frame (the follower skips it).
        assert_eq!(firsts(t.from(6, 1 << 20).unwrap()), vec![5, 8, 9]);
        assert_eq!(firsts(t.from(11, 1 << 20).unwrap()), Vec::<u64>::new());
        // A byte bound still sends one frame.
        assert_eq!(firsts(t.from(5, 1).unwrap()), vec![5]);
        assert_eq!(t.from(4, 1 << 20), Err(Missing::Behind { start: 5 }));
        assert_eq!(t.from(12, 1 << 20), Err(Missing::Ahead { end: 11 }));

        // A tail bounded to about two frames forgets the oldest.
        let one = frame(7, 2).encoded_len();
        let mut t = Tail::new(1, 2 * one);
        for first in [1, 3, 5, 7] {
            t.push(frame(first, 2));
        }
        assert_eq!(t.from(4, 1 << 20), Err(Missing::Behind { start: 5 }));
        assert_eq!(firsts(t.from(5, 1 << 20).unwrap()), vec![5, 7]);

        // A floor keeps the frames from its position on past the bound, until lifted.
        t.set_floor(Some(6));
        for first in [9, 11, 13] {
            t.push(frame(first, 2));
        }
        assert_eq!(firsts(t.from(6, 1 << 20).unwrap()), vec![5, 7, 9, 11, 13]);
        t.set_floor(None);
        t.push(frame(15, 2));
        assert_eq!(t.from(6, 1 << 20), Err(Missing::Behind { start: 13 }));
    }
}
