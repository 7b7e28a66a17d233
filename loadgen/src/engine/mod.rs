//! The I/O side: one connected UDP socket per client, io_uring multishot receives (or epoll
//! and recvmmsg) over all of them with kernel receive timestamps, sendmmsg in batches, a timer
//! heap for frame pacing and protocol timers, and the worker loop that drives many clients on
//! one thread.

pub mod buf_ring;
pub mod clients;
pub mod epoll;
pub mod rx_time;
pub mod timers;
pub mod udp;
pub mod uring;
pub mod worker;

pub use timers::TimerHeap;
pub use udp::{RxBatch, TxBatch, UdpSock};
pub use worker::{
    ClientMedia, NewClient, RxMode, Worker, WorkerHandle, WorkerResult, WorkerSnapshot,
};
