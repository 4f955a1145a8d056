//! Memory for cached blocks, apart from the general heap: chunks of [`SLAB_BLOCKS`]
//! block-sized slots, each slot handed out as the bytes of one block.
//!
//! Why: a block fetched over HTTP is copied out of the client's buffers while the request's
//! other allocations (headers, signing strings, the connection's read buffer) are live.
//! From the general heap, the long-lived block lands between them, and when they are freed
//! their holes are too small or too scattered for the next request's buffers: over 50k
//! single-block GETs glibc kept ~50 MB free but resident in a 203 MB cache's heap (design
//! note 015). In their own chunks the blocks never sit between short-lived allocations.
//!
//! A slot is free again when the last [`Bytes`] of its block drops (the cache evicted it
//! and no reader's table keeps it). New blocks take a free slot of the lowest chunk that
//! has one, so the chunks at the end drain, and a chunk whose slots are all free is
//! returned to the allocator (one spare is kept). The memory held is so the blocks alive,
//! rounded up to chunks.

use std::alloc::Layout;
use std::collections::BTreeSet;
use std::ptr::NonNull;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

/// Slots per chunk: 1 MiB chunks of 4 KiB blocks.
pub(crate) const SLAB_BLOCKS: usize = 256;

/// Blocks larger than this are allocated on their own (a chunk would be too large).
const MAX_SLAB_BLOCK: usize = 1 << 20;

/// Block memory for one block size.
#[derive(Debug)]
pub(crate) struct BlockSlab {
    shared: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    block_size: usize,
    layout: Layout,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Chunks by index; `None` once returned to the allocator.
    chunks: Vec<Option<Chunk>>,
    /// Indices of chunks with a free slot, lowest first.
    open: BTreeSet<usize>,
    /// The one chunk kept with every slot free.
    spare: Option<usize>,
}

#[derive(Debug)]
struct Chunk {
    memory: NonNull<u8>,
    /// Free slots of this chunk.
    free: Vec<u16>,
}

// SAFETY: a chunk's memory is owned by the slab; slots are handed out one holder at a time
// under the state's lock.
unsafe impl Send for Chunk {}

impl BlockSlab {
    /// Slots of `block_size` bytes; a size of 0 or over 1 MiB allocates each block alone.
    pub(crate) fn new(block_size: u64) -> Self {
        let size = usize::try_from(block_size).unwrap_or(usize::MAX);
        let shared = (1..=MAX_SLAB_BLOCK).contains(&size).then(|| {
            let layout = Layout::from_size_align(size * SLAB_BLOCKS, 4096)
                .expect("at most 256 MiB, aligned to a page");
            Arc::new(Shared {
                block_size: size,
                layout,
                state: Mutex::new(State::default()),
            })
        });
        BlockSlab { shared }
    }

    /// `data` copied into a slot of its own (on its own when longer than a block).
    pub(crate) fn copy(&self, data: &[u8]) -> Bytes {
        let Some(shared) = &self.shared else {
            return Bytes::copy_from_slice(data);
        };
        if data.is_empty() || data.len() > shared.block_size {
            return Bytes::copy_from_slice(data);
        }
        let Some((chunk, slot, at)) = shared.take() else {
            return Bytes::copy_from_slice(data);
        };
        // SAFETY: `at` is the start of slot `slot`, `block_size` bytes inside a live chunk,
        // taken from the free list just now: nothing else reads or writes it until the
        // `SlabBlock` made below drops and puts it back.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), at.as_ptr(), data.len());
        }
        Bytes::from_owner(SlabBlock {
            shared: shared.clone(),
            chunk,
            slot,
            at,
            len: data.len(),
        })
    }

    /// Chunks allocated now (for tests and the memory check).
    #[cfg(test)]
    pub(crate) fn chunks(&self) -> usize {
        self.shared
            .as_ref()
            .map_or(0, |s| s.state.lock().chunks.iter().flatten().count())
    }
}

impl Shared {
    /// A free slot: (chunk, slot, its start); `None` if the allocator has no memory.
    fn take(&self) -> Option<(usize, u16, NonNull<u8>)> {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let index = match st.open.first() {
            Some(&i) => i,
            None => {
                // SAFETY: the layout's size is not zero (a block of at least one byte).
                let memory = NonNull::new(unsafe { std::alloc::alloc(self.layout) })?;
                let chunk = Chunk {
                    memory,
                    free: (0..SLAB_BLOCKS as u16).rev().collect(),
                };
                let i = match st.chunks.iter().position(Option::is_none) {
                    Some(i) => {
                        st.chunks[i] = Some(chunk);
                        i
                    }
                    None => {
                        st.chunks.push(Some(chunk));
                        st.chunks.len() - 1
                    }
                };
                st.open.insert(i);
                i
            }
        };
        let chunk = st.chunks[index].as_mut().expect("open chunks are live");
        let slot = chunk.free.pop().expect("open chunks have a free slot");
        // SAFETY: slot < SLAB_BLOCKS, so the offset is inside the chunk's allocation.
        let at = unsafe { chunk.memory.add(usize::from(slot) * self.block_size) };
        if chunk.free.is_empty() {
            st.open.remove(&index);
        }
        if st.spare == Some(index) {
            st.spare = None;
        }
        Some((index, slot, at))
    }

    /// Slot `slot` of chunk `index` is free again.
    fn give_back(&self, index: usize, slot: u16) {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let chunk = st.chunks[index]
            .as_mut()
            .expect("a held slot's chunk is live");
        chunk.free.push(slot);
        let empty = chunk.free.len() == SLAB_BLOCKS;
        st.open.insert(index);
        if !empty {
            return;
        }
        // Keep one empty chunk for the next blocks; return the others.
        if st.spare.is_none() {
            st.spare = Some(index);
            return;
        }
        let chunk = st.chunks[index].take().expect("checked above");
        st.open.remove(&index);
        // SAFETY: allocated with this layout in `take`; every slot is free, so no
        // `SlabBlock` points into it.
        unsafe { std::alloc::dealloc(chunk.memory.as_ptr(), self.layout) };
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for chunk in self.state.get_mut().chunks.drain(..).flatten() {
            // SAFETY: allocated with this layout; `Shared` drops after its last
            // `SlabBlock` (each holds an `Arc` of it), so nothing points into it.
            unsafe { std::alloc::dealloc(chunk.memory.as_ptr(), self.layout) };
        }
    }
}

/// One block's bytes in a slot; the slot is free again when this drops.
struct SlabBlock {
    shared: Arc<Shared>,
    chunk: usize,
    slot: u16,
    at: NonNull<u8>,
    len: usize,
}

// SAFETY: a `SlabBlock` only reads its own slot, which nothing writes while it lives.
unsafe impl Send for SlabBlock {}
// SAFETY: as above; shared reads of immutable bytes.
unsafe impl Sync for SlabBlock {}

impl AsRef<[u8]> for SlabBlock {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of the slot were written in `BlockSlab::copy` and
        // stay unchanged while this holds the slot; the chunk lives as long as `shared`.
        unsafe { std::slice::from_raw_parts(self.at.as_ptr(), self.len) }
    }
}

impl Drop for SlabBlock {
    fn drop(&mut self) {
        self.shared.give_back(self.chunk, self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_bytes_and_slots_are_reused() {
        let slab = BlockSlab::new(16);
        let blocks: Vec<Bytes> = (0..600u32)
            .map(|i| slab.copy(&[(i % 251) as u8; 16][..1 + (i % 16) as usize]))
            .collect();
        assert_eq!(slab.chunks(), 3, "600 blocks in chunks of 256");
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(b.len(), 1 + i % 16);
            assert!(b.iter().all(|&x| x == (i % 251) as u8), "block {i}");
        }
        // Slices and clones keep the slot.
        let part = blocks[5].slice(1..3);
        drop(blocks);
        assert_eq!(&part[..], &[5, 5]);
        assert_eq!(slab.chunks(), 2, "the slice's chunk and one empty spare");
        drop(part);
        assert_eq!(slab.chunks(), 1, "empty chunks go back but the spare");
        // Freed slots come back before a new chunk is taken.
        let again: Vec<Bytes> = (0..256).map(|_| slab.copy(b"x")).collect();
        assert_eq!(slab.chunks(), 1);
        drop(again);
    }

    #[test]
    fn the_lowest_free_slot_is_taken_so_the_last_chunks_drain() {
        let slab = BlockSlab::new(8);
        let mut blocks: Vec<Option<Bytes>> = (0..SLAB_BLOCKS * 3)
            .map(|i| Some(slab.copy(&i.to_le_bytes())))
            .collect();
        // Free every other block everywhere, then take as many again.
        for b in blocks.iter_mut().step_by(2) {
            *b = None;
        }
        let refill: Vec<Bytes> = (0..SLAB_BLOCKS * 3 / 2).map(|_| slab.copy(b"y")).collect();
        assert_eq!(slab.chunks(), 3);
        for (i, b) in blocks.iter().enumerate() {
            if let Some(b) = b {
                assert_eq!(&b[..], &i.to_le_bytes(), "block {i}");
            }
        }
        drop(refill);
        drop(blocks);
        assert_eq!(slab.chunks(), 1);
    }

    #[test]
    fn odd_sizes_are_copied_on_their_own() {
        let slab = BlockSlab::new(4);
        assert_eq!(&slab.copy(b"longer than four")[..], b"longer than four");
        assert!(slab.copy(b"").is_empty());
        assert_eq!(slab.chunks(), 0);
        let none = BlockSlab::new(0);
        assert_eq!(&none.copy(b"abc")[..], b"abc");
        let huge = BlockSlab::new(8 << 20);
        assert_eq!(&huge.copy(b"abc")[..], b"abc");
    }

    #[test]
    fn blocks_cross_threads() {
        let slab = Arc::new(BlockSlab::new(64));
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                let slab = slab.clone();
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    for i in 0..2000u32 {
                        let b = slab.copy(&[t; 64]);
                        if i % 3 == 0 {
                            kept.push(b);
                        }
                    }
                    kept
                })
            })
            .collect();
        for (t, h) in handles.into_iter().enumerate() {
            let kept = h.join().unwrap();
            assert!(kept.iter().all(|b| b.iter().all(|&x| x == t as u8)));
        }
    }
}
