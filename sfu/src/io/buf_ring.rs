//! A provided-buffer ring (io_uring_register_buf_ring(3), Linux 5.19): fixed receive buffers the
//! kernel picks from for multishot receives, handed back as soon as a datagram is consumed.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

/// Zeroed memory aligned to a page, freed on drop.
pub(crate) struct PageAlloc {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl PageAlloc {
    const PAGE: usize = 4096;

    pub(crate) fn new(size: usize) -> std::io::Result<Self> {
        let layout = Layout::from_size_align(size.max(1).next_multiple_of(Self::PAGE), Self::PAGE)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr =
            NonNull::new(ptr).ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(PageAlloc { ptr, layout })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for PageAlloc {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// `count` receive buffers of `buf_len` bytes and the ring of entries that offers them to the
/// kernel. Buffer ids are indexes into the buffer memory.
pub(crate) struct BufRing {
    entries: PageAlloc,
    memory: PageAlloc,
    count: u16,
    tail: u16,
    stride: usize,
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
    /// `count` must be a power of two no larger than 32768.
    pub(crate) fn new(count: u16, buf_len: usize) -> std::io::Result<Self> {
        if !count.is_power_of_two() || count > 32768 {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        let stride = buf_len.next_multiple_of(64);
        let entries = PageAlloc::new(count as usize * std::mem::size_of::<BufRingEntry>())?;
        let memory = PageAlloc::new(count as usize * stride)?;
        Ok(BufRing {
            entries,
            memory,
            count,
            tail: 0,
            stride,
            buf_len,
        })
    }

    /// Address of the entry array, for registration.
    pub(crate) fn ring_addr(&self) -> u64 {
        self.entries.as_ptr() as u64
    }

    pub(crate) fn count(&self) -> u16 {
        self.count
    }

    /// Offers buffer `bid` to the kernel again (visible after [`BufRing::publish`]).
    #[inline]
    pub(crate) fn recycle(&mut self, bid: u16) {
        debug_assert!(bid < self.count);
        let idx = (self.tail & (self.count - 1)) as usize;
        // SAFETY: `idx < count`, and the entry array holds `count` entries. Only addr, len and bid
        // are written; the shared tail lives in entry 0's reserved field and is left alone.
        let entry = unsafe { &mut *self.entries.as_ptr().cast::<BufRingEntry>().add(idx) };
        // SAFETY: `bid < count`, so the offset stays inside the buffer memory.
        entry.set_addr(unsafe { self.memory.as_ptr().add(bid as usize * self.stride) } as u64);
        entry.set_len(self.buf_len as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes recycled buffers visible to the kernel.
    #[inline]
    pub(crate) fn publish(&self) {
        // SAFETY: the tail is a u16 inside the live, page-aligned entry array; the kernel reads it
        // concurrently, hence the atomic release store.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr().cast::<BufRingEntry>()).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// The whole of buffer `bid`.
    #[inline]
    pub(crate) fn buf_mut(&mut self, bid: u16) -> &mut [u8] {
        assert!(
            bid < self.count,
            "buffer id from the kernel is one we registered"
        );
        // SAFETY: buffer `bid` spans `buf_len <= stride` bytes inside the memory block; the
        // kernel wrote it before posting the completion and does not touch it until recycled.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.memory.as_ptr().add(bid as usize * self.stride),
                self.buf_len,
            )
        }
    }
}
