//! `loadgen`: drives a Ringcast (or other WHIP/WHEP) server with real publishers and
//! subscribers. See `loadgen --help` and docs/loadgen.md.

use std::process::ExitCode;

use clap::Parser;
use loadgen::cli::Args;
use loadgen::run::run;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("relay") {
        return loadgen::relay::cli::main(std::env::args().skip(1));
    }
    let args = Args::parse();
    let json = args.json.clone();
    let outcome = match run(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", outcome.report.summary());
    if let Some(path) = json {
        let text = match serde_json::to_string_pretty(&outcome.report) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("loadgen: cannot serialize the report: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("loadgen: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if outcome.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
