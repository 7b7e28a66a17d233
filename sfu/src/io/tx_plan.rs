//! Turns a [`TxBatch`] into kernel send messages: one `msghdr` per datagram, or, with GSO, one per
//! run of equal-size datagrams to the same destination carrying a UDP_SEGMENT control message.

use super::TxBatch;
use super::addr::{GSO_CMSG_SPACE, GsoCmsg, write_sockaddr};

/// Most segments the kernel accepts in one GSO send (UDP_MAX_SEGMENTS).
pub(crate) const MAX_GSO_SEGMENTS: usize = 64;
/// Most payload bytes in one GSO send (below the 65507-byte UDP/IPv4 limit).
const MAX_GSO_BYTES: usize = 65_000;

/// Pre-allocated send messages for one [`TxBatch`]. The built headers point into the plan and into
/// the batch's slots, so both must stay put (and the batch unchanged) until the sends complete.
pub(crate) struct TxPlan {
    hdrs: Box<[libc::mmsghdr]>,
    iovs: Box<[libc::iovec]>,
    addrs: Box<[libc::sockaddr_in6]>,
    cmsgs: Box<[GsoCmsg]>,
    segs: Box<[u16]>,
    len: usize,
}

impl std::fmt::Debug for TxPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxPlan")
            .field("messages", &self.len)
            .finish()
    }
}

impl TxPlan {
    /// Room for a batch of `capacity` datagrams.
    pub(crate) fn new(capacity: usize) -> Self {
        // SAFETY: mmsghdr, iovec and sockaddr_in6 are plain old data; all-zero is valid (null
        // pointers, zero lengths).
        let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        let zero_iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        // SAFETY: as above.
        let zero_addr: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        TxPlan {
            hdrs: vec![zero_hdr; capacity].into_boxed_slice(),
            iovs: vec![zero_iov; capacity].into_boxed_slice(),
            addrs: vec![zero_addr; capacity].into_boxed_slice(),
            cmsgs: vec![GsoCmsg::new(); capacity].into_boxed_slice(),
            segs: vec![0; capacity].into_boxed_slice(),
            len: 0,
        }
    }

    /// Builds the messages for `batch` (whose capacity must not exceed the plan's) and returns
    /// how many there are. With `gso`, consecutive datagrams to one destination with the size of
    /// the first (the last of a run may be shorter) share a message.
    pub(crate) fn build(&mut self, batch: &TxBatch, ipv6_socket: bool, gso: bool) -> usize {
        let n = batch.len().min(self.iovs.len());
        let mut i = 0;
        let mut m = 0;
        while i < n {
            let first = batch.meta(i);
            let seg = first.len as usize;
            let mut j = i + 1;
            if gso {
                let max = MAX_GSO_SEGMENTS.min(MAX_GSO_BYTES / seg.max(1)).max(1);
                while j < n && j - i < max {
                    let next = batch.meta(j);
                    if next.dest != first.dest || next.len as usize > seg {
                        break;
                    }
                    j += 1;
                    if (next.len as usize) < seg {
                        break; // a shorter segment can only end a run
                    }
                }
            }
            for k in i..j {
                self.iovs[k] = libc::iovec {
                    iov_base: batch.slot_ptr(k).cast_mut().cast(),
                    iov_len: batch.meta(k).len as usize,
                };
            }
            let namelen = write_sockaddr(&mut self.addrs[m], first.dest, ipv6_socket);
            let (control, controllen) = if j - i > 1 {
                self.cmsgs[m].set(seg as u16);
                (self.cmsgs[m].as_mut_ptr(), GSO_CMSG_SPACE)
            } else {
                (std::ptr::null_mut(), 0)
            };
            let h = &mut self.hdrs[m];
            h.msg_hdr.msg_name = (&mut self.addrs[m] as *mut libc::sockaddr_in6).cast();
            h.msg_hdr.msg_namelen = namelen;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = j - i;
            h.msg_hdr.msg_control = control;
            h.msg_hdr.msg_controllen = controllen;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
            self.segs[m] = (j - i) as u16;
            m += 1;
            i = j;
        }
        self.len = m;
        m
    }

    /// Datagrams carried by message `m`.
    #[inline]
    pub(crate) fn segments(&self, m: usize) -> u16 {
        self.segs[m]
    }

    /// Bytes `sendmmsg` reported sent for message `m`.
    #[inline]
    pub(crate) fn sent_len(&self, m: usize) -> u32 {
        self.hdrs[m].msg_len
    }

    /// The `msghdr` of message `m`, for a `SendMsg` submission.
    #[inline]
    pub(crate) fn msghdr(&self, m: usize) -> *const libc::msghdr {
        &self.hdrs[m].msg_hdr
    }

    /// The built messages, for `sendmmsg` (which writes `msg_len`).
    #[inline]
    pub(crate) fn mmsghdrs(&mut self) -> &mut [libc::mmsghdr] {
        &mut self.hdrs[..self.len]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn batch(items: &[(&str, usize)]) -> TxBatch {
        let mut b = TxBatch::new(items.len());
        for &(dest, len) in items {
            assert!(b.push(dest.parse::<SocketAddr>().unwrap(), &vec![7u8; len]));
        }
        b
    }

    #[test]
    fn without_gso_every_datagram_is_a_message() {
        let b = batch(&[
            ("127.0.0.1:1", 100),
            ("127.0.0.1:1", 100),
            ("127.0.0.1:2", 50),
        ]);
        let mut p = TxPlan::new(3);
        assert_eq!(p.build(&b, false, false), 3);
        assert!((0..3).all(|m| p.segments(m) == 1));
    }

    #[test]
    fn gso_groups_equal_runs_to_one_destination() {
        let b = batch(&[
            ("127.0.0.1:1", 100),
            ("127.0.0.1:1", 100),
            ("127.0.0.1:1", 60), // shorter: ends the run
            ("127.0.0.1:1", 100),
            ("127.0.0.1:2", 100), // other destination
            ("127.0.0.1:2", 120), // longer: starts a new run
        ]);
        let mut p = TxPlan::new(6);
        assert_eq!(p.build(&b, false, true), 4);
        let segs: Vec<u16> = (0..4).map(|m| p.segments(m)).collect();
        assert_eq!(segs, [3, 1, 1, 1]);
        // SAFETY: message 0 was just built and points into the live plan.
        let h = unsafe { &*p.msghdr(0) };
        assert_eq!(h.msg_iovlen, 3);
        assert_eq!(h.msg_controllen, GSO_CMSG_SPACE);
        // SAFETY: as above.
        assert!(
            unsafe { &*p.msghdr(1) }.msg_control.is_null(),
            "a lone datagram carries no cmsg"
        );
    }

    #[test]
    fn gso_runs_respect_the_segment_limit() {
        let items: Vec<(&str, usize)> = vec![("127.0.0.1:1", 200); 150];
        let b = batch(&items);
        let mut p = TxPlan::new(150);
        let m = p.build(&b, false, true);
        assert_eq!(m, 3);
        assert_eq!((0..m).map(|i| p.segments(i) as usize).sum::<usize>(), 150);
        assert!((0..m).all(|i| p.segments(i) as usize <= MAX_GSO_SEGMENTS));
    }
}
