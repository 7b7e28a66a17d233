//! Per-subscriber VP8 picture numbering (RFC 7741 §4.2): keeps the picture id and TL0PICIDX a
//! viewer sees continuous when the SFU drops pictures (temporal layers) or switches between
//! simulcast encodings, each of which numbers its pictures on its own. A receiver that sees a
//! picture id jump treats the pictures in between as lost and may wait for them.

/// Maps one encoding's picture ids and TL0PICIDX to the viewer's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PictureIdRewriter {
    started: bool,
    /// out = in + offset (15 bits).
    pid_offset: u16,
    tl0_offset: u8,
    last_out_pid: u16,
    last_out_tl0: u8,
}

const PID_MASK: u16 = 0x7fff;

impl PictureIdRewriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new encoding starts with the picture `pid` / `tl0` (a keyframe): it follows the last
    /// picture the viewer got. Before any picture this keeps the publisher's numbers.
    pub fn switch(&mut self, pid: u16, tl0: u8) {
        if !self.started {
            return;
        }
        self.pid_offset = self.last_out_pid.wrapping_add(1).wrapping_sub(pid) & PID_MASK;
        self.tl0_offset = self.last_out_tl0.wrapping_add(1).wrapping_sub(tl0);
    }

    /// A picture of the current encoding was dropped: later ones close the gap.
    pub fn skip_picture(&mut self) {
        self.pid_offset = self.pid_offset.wrapping_sub(1) & PID_MASK;
    }

    /// The viewer's numbers for a forwarded packet's `pid` / `tl0` (15-bit picture id; callers
    /// with the 7-bit form keep the low 7 bits).
    pub fn map(&mut self, pid: u16, tl0: u8) -> (u16, u8) {
        let out = (
            pid.wrapping_add(self.pid_offset) & PID_MASK,
            tl0.wrapping_add(self.tl0_offset),
        );
        let newer = !self.started || {
            let d = out.0.wrapping_sub(self.last_out_pid) & PID_MASK;
            d != 0 && d < 0x4000
        };
        if newer {
            self.last_out_pid = out.0;
            self.last_out_tl0 = out.1;
        }
        self.started = true;
        out
    }

    /// The numbers a packet would get now, without recording it (retransmissions).
    pub fn peek(&self, pid: u16, tl0: u8) -> (u16, u8) {
        (
            pid.wrapping_add(self.pid_offset) & PID_MASK,
            tl0.wrapping_add(self.tl0_offset),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_until_something_is_dropped_or_switched() {
        let mut r = PictureIdRewriter::new();
        assert_eq!(r.map(100, 7), (100, 7));
        assert_eq!(r.map(101, 7), (101, 7));
    }

    #[test]
    fn dropped_pictures_leave_no_gap() {
        let mut r = PictureIdRewriter::new();
        assert_eq!(r.map(10, 1), (10, 1));
        r.skip_picture(); // 11 dropped
        assert_eq!(r.map(12, 2), (11, 2));
        r.skip_picture(); // 13 dropped
        assert_eq!(r.map(14, 3), (12, 3));
    }

    #[test]
    fn a_switch_continues_after_the_last_picture_and_wraps() {
        let mut r = PictureIdRewriter::new();
        r.map(0x7ffe, 255);
        r.map(0x7fff, 255);
        r.switch(500, 40);
        assert_eq!(r.map(500, 40), (0, 0));
        assert_eq!(r.map(501, 40), (1, 0));
        assert_eq!(r.map(502, 41), (2, 1));
        assert_eq!(r.peek(501, 40), (1, 0));
    }
}
