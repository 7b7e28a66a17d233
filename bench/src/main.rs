//! `bench`: Ringcast's benchmark runner. `bench macro` runs the side-by-side macro benchmark
//! (Ringcast and Janus under the same loadgen workload); see `bench macro --help`.

mod macro_bench;
mod plot;

const USAGE: &str = "usage: bench <command> [ARGS]\n\ncommands:\n  macro    side-by-side macro benchmark (Ringcast vs Janus); `bench macro --help`\n  plot     SVG charts of a macro report; `bench plot --help`";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("macro") => macro_bench::main(&args[1..]),
        Some("plot") => plot::main(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            0
        }
        Some(other) => {
            eprintln!("bench: unknown command {other}\n{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
