//! The Ringcast server: signaling with an embedded media node.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    signaling::run_from_args()
}
