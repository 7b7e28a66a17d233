//! Channel recording: RTP of a channel's tracks into WebM files, and where the files are stored.

pub mod depacketizer;
pub mod ebml;
pub mod frame_header;
pub mod interleave;
pub mod part;
pub mod participant;
pub mod recorder;
pub mod storage;
pub mod vp9_superframe;
pub mod webm;

#[cfg(test)]
mod ebml_reader;
