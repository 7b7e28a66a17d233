//! The I/O side: one connected UDP socket per client, epoll over all of them, recvmmsg and
//! sendmmsg in batches, a timer heap for frame pacing and protocol timers, and the worker loop
//! that drives many clients on one thread.

pub mod epoll;
pub mod timers;
pub mod udp;
pub mod worker;

pub use timers::TimerHeap;
pub use udp::{RxBatch, TxBatch, UdpSock};
pub use worker::{ClientMedia, NewClient, Worker, WorkerHandle, WorkerResult, WorkerSnapshot};
