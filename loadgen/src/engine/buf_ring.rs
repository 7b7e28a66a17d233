//! A provided-buffer ring (io_uring_register_buf_ring(3), Linux 5.19): fixed receive buffers
//! the kernel picks from for multishot receives on every client socket, handed back as soon as a
//! datagram has been handled.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

/// Zeroed, page-aligned memory, freed on drop.
struct PageAlloc {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl PageAlloc {
    fn new(size: usize) -> std::io::Result<Self> {
        let layout = Layout::from_size_align(size.max(1).next_multiple_of(4096), 4096)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr =
            NonNull::new(ptr).ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(PageAlloc { ptr, layout })
    }
}

impl Drop for PageAlloc {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// `count` buffers of `buf_len` bytes and the entry ring that offers them to the kernel; buffer
/// ids index the buffer memory.
pub struct BufRing {
    entries: PageAlloc,
    memory: PageAlloc,
    count: u16,
    tail: u16,
    buf_len: usize,
}

impl std::fmt::Debug for BufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufRing")
            .field("count", &self.count)
            .field("buf_len", &self.buf_len)
            .finish()
    }
}

impl BufRing {
    /// `count`, a power of two up to 32768, buffers of `buf_len` bytes (a multiple of 64).
    pub fn new(count: u16, buf_len: usize) -> std::io::Result<Self> {
        if !count.is_power_of_two() || count > 32768 || !buf_len.is_multiple_of(64) {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(BufRing {
            entries: PageAlloc::new(usize::from(count) * std::mem::size_of::<BufRingEntry>())?,
            memory: PageAlloc::new(usize::from(count) * buf_len)?,
            count,
            tail: 0,
            buf_len,
        })
    }

    /// Address of the entry array, for registration.
    pub fn ring_addr(&self) -> u64 {
        self.entries.ptr.as_ptr() as u64
    }

    /// Number of buffers.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Offers buffer `bid` to the kernel again (visible after [`publish`](Self::publish)).
    pub fn recycle(&mut self, bid: u16) {
        if bid >= self.count {
            return;
        }
        let idx = usize::from(self.tail & (self.count - 1));
        // SAFETY: `idx < count` and the entry array holds `count` entries. Only addr, len and
        // bid are written; the shared tail in entry 0's reserved field is left alone.
        let entry = unsafe { &mut *self.entries.ptr.as_ptr().cast::<BufRingEntry>().add(idx) };
        // SAFETY: `bid < count`, so the offset stays inside the buffer memory.
        let addr = unsafe {
            self.memory
                .ptr
                .as_ptr()
                .add(usize::from(bid) * self.buf_len)
        };
        entry.set_addr(addr as u64);
        entry.set_len(self.buf_len as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes recycled buffers visible to the kernel.
    pub fn publish(&self) {
        // SAFETY: the tail is a u16 inside the live, page-aligned entry array; the kernel reads
        // it concurrently, hence the atomic release store.
        unsafe {
            let tail =
                BufRingEntry::tail(self.entries.ptr.as_ptr().cast::<BufRingEntry>()).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// The first `len` bytes of buffer `bid` (empty for an id that is not ours).
    pub fn buf_mut(&mut self, bid: u16, len: usize) -> &mut [u8] {
        if bid >= self.count {
            return &mut [];
        }
        // SAFETY: buffer `bid` spans `buf_len` bytes inside the memory block; the kernel wrote
        // it before posting the completion and does not touch it until it is recycled.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.memory
                    .ptr
                    .as_ptr()
                    .add(usize::from(bid) * self.buf_len),
                len.min(self.buf_len),
            )
        }
    }
}
