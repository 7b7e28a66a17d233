//! The queues between shards: one bounded lock-free queue per ordered pair of shards, and each
//! shard's waker so a sender can interrupt the receiver's wait (DESIGN.md "Between shards").

use std::sync::{Arc, OnceLock};

use crossbeam_queue::ArrayQueue;

use crate::ShardId;
use crate::core::ShardMsg;
use crate::io::Waker;

/// All queues of a process's shards.
#[derive(Debug)]
pub struct Mesh {
    shards: usize,
    /// `queues[from * shards + to]`.
    queues: Box<[ArrayQueue<ShardMsg>]>,
    wakers: Box<[OnceLock<Waker>]>,
}

impl Mesh {
    /// Queues of `capacity` messages between every ordered pair of `shards` shards.
    pub fn new(shards: usize, capacity: usize) -> Arc<Self> {
        let queues = (0..shards * shards)
            .map(|_| ArrayQueue::new(capacity.max(1)))
            .collect::<Vec<_>>()
            .into_boxed_slice();
        let wakers = (0..shards)
            .map(|_| OnceLock::new())
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Arc::new(Mesh {
            shards,
            queues,
            wakers,
        })
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Registers shard `id`'s waker (once, when its backend is open).
    pub fn set_waker(&self, id: ShardId, waker: Waker) {
        let _ = self.wakers[id.0 as usize].set(waker);
    }

    /// The endpoint shard `me` uses.
    pub fn port(self: &Arc<Self>, me: ShardId) -> MeshPort {
        MeshPort {
            me,
            mesh: Arc::clone(self),
            dirty: vec![false; self.shards].into_boxed_slice(),
        }
    }

    fn queue(&self, from: usize, to: usize) -> &ArrayQueue<ShardMsg> {
        &self.queues[from * self.shards + to]
    }
}

/// One shard's end of the mesh.
#[derive(Debug)]
pub struct MeshPort {
    me: ShardId,
    mesh: Arc<Mesh>,
    dirty: Box<[bool]>,
}

impl MeshPort {
    pub fn me(&self) -> ShardId {
        self.me
    }

    pub fn shards(&self) -> usize {
        self.mesh.shards
    }

    /// Queues `msg` for shard `to`; gives it back when that queue is full.
    #[allow(clippy::result_large_err)] // handing the message back is the point
    #[inline]
    pub fn send(&mut self, to: ShardId, msg: ShardMsg) -> Result<(), ShardMsg> {
        let t = to.0 as usize;
        if t >= self.mesh.shards || to == self.me {
            return Err(msg);
        }
        self.mesh.queue(self.me.0 as usize, t).push(msg)?;
        self.dirty[t] = true;
        Ok(())
    }

    /// Wakes every shard this one sent to since the last call (once per loop iteration).
    pub fn wake_peers(&mut self) {
        for (i, d) in self.dirty.iter_mut().enumerate() {
            if std::mem::take(d)
                && let Some(w) = self.mesh.wakers[i].get()
            {
                w.wake();
            }
        }
    }

    /// Takes up to `max` messages addressed to this shard, fairly across senders.
    pub fn recv(&mut self, max: usize, mut f: impl FnMut(ShardId, ShardMsg)) -> usize {
        let me = self.me.0 as usize;
        let mut n = 0;
        loop {
            let mut any = false;
            for from in 0..self.mesh.shards {
                if from == me || n >= max {
                    continue;
                }
                if let Some(msg) = self.mesh.queue(from, me).pop() {
                    f(ShardId(from as u16), msg);
                    n += 1;
                    any = true;
                }
            }
            if !any || n >= max {
                return n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StreamKey, TrackId};

    #[test]
    fn mesh_delivers_between_pairs_and_bounds_queues() {
        let mesh = Mesh::new(3, 2);
        let mut a = mesh.port(ShardId(0));
        let mut c = mesh.port(ShardId(2));
        for i in 0..2 {
            a.send(
                ShardId(2),
                ShardMsg::KeyframeRequest {
                    track: TrackId(i),
                    layer_slot: 0,
                },
            )
            .unwrap();
        }
        assert!(
            a.send(
                ShardId(2),
                ShardMsg::KeyframeRequest {
                    track: TrackId(9),
                    layer_slot: 0,
                }
            )
            .is_err(),
            "full queue gives the message back"
        );
        assert!(
            a.send(
                ShardId(0),
                ShardMsg::TrackEnded {
                    stream: StreamKey(1),
                    track: TrackId(1)
                }
            )
            .is_err(),
            "no queue to self"
        );
        let mut got = Vec::new();
        c.recv(16, |from, m| got.push((from, m)));
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(f, _)| *f == ShardId(0)));
    }
}
