//! Per-subscriber picture numbering: keeps the VP8 picture id and TL0PICIDX (RFC 7741 §4.2) a
//! viewer sees continuous when the SFU drops pictures (temporal layers) or switches between
//! simulcast encodings, each of which numbers its pictures on its own; and keeps the dependency
//! descriptor's frame number (AV1 RTP specification, appendix A) moving forward across such a
//! switch. A receiver that sees a picture id jump treats the pictures in between as lost and may
//! wait for them; one that sees frame numbers go back takes the frames for old ones.

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

/// Maps one encoding's dependency-descriptor frame numbers to the viewer's: an offset that a
/// switch sets so the new encoding's first frame follows the last one forwarded. Frames dropped
/// within an encoding leave gaps, which the descriptor's frame diffs expect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameNumberRewriter {
    started: bool,
    offset: u16,
    last_out: u16,
}

impl FrameNumberRewriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new encoding starts with frame `frame`.
    pub fn switch(&mut self, frame: u16) {
        if self.started {
            self.offset = self.last_out.wrapping_add(1).wrapping_sub(frame);
        }
    }

    /// The number a packet would get now, without recording it (retransmissions).
    pub fn peek(&self, frame: u16) -> u16 {
        frame.wrapping_add(self.offset)
    }

    /// The viewer's number for a forwarded packet's frame number.
    pub fn map(&mut self, frame: u16) -> u16 {
        let out = frame.wrapping_add(self.offset);
        if !self.started || (out.wrapping_sub(self.last_out) as i16) > 0 {
            self.last_out = out;
        }
        self.started = true;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_numbers_follow_on_across_a_switch() {
        let mut r = FrameNumberRewriter::new();
        assert_eq!(r.map(100), 100);
        assert_eq!(r.map(101), 101);
        assert_eq!(r.map(101), 101, "packets of one frame share its number");
        r.switch(9000);
        assert_eq!(r.map(9000), 102);
        assert_eq!(r.map(9003), 105, "gaps within an encoding stay");
    }

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
