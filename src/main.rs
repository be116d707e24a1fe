//! The `ringcast` binary: parses the command line and hands off. No logic
//! of its own: flags and the file become a [`Config`](ringcast::config)
//! (`cli`, `config`), logging is set up (`logging`), the machine is
//! checked and listeners bound (`startup`), the shards run (`server`).
//! Errors are printed once, here.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use ringcast::cli::{self, Cli, Command, ServeArgs};
use ringcast::config::{self, Config};
use ringcast::startup::{self, StartError};

// Why: many threads allocate and free small buffers at once (one per
// shard); mimalloc keeps per-thread heaps where glibc's malloc contends.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    startup::refuse_huge_pages();
    match Cli::parse().command {
        Command::Serve(args) => serve(&args),
        Command::CheckConfig(args) => check_config(&args.file),
        Command::Doctor(args) => doctor(&args),
        Command::Bench(args) => bench(&args),
        Command::BenchFloor(args) => bench_floor(&args),
    }
}

fn bench(args: &cli::BenchArgs) -> ExitCode {
    let config = match args.to_config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(cli::EXIT_CONFIG);
        }
    };
    let report = match ringcast_bench::run(&config) {
        Ok(report) => report,
        Err(err) => return fail(&err, cli::EXIT_FAILURE),
    };
    print!("{}", report.summary());
    if let Some(path) = &args.json {
        if let Err(err) = report.write_json(path) {
            eprintln!("error: writing {}: {err}", path.display());
            return ExitCode::from(cli::EXIT_FAILURE);
        }
    }
    if let Some(path) = &args.plot {
        if let Err(err) = report.write_plot(path) {
            eprintln!("error: drawing {}: {err}", path.display());
            return ExitCode::from(cli::EXIT_FAILURE);
        }
    }
    ExitCode::SUCCESS
}

fn bench_floor(args: &cli::FloorArgs) -> ExitCode {
    let config = match args.to_config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(cli::EXIT_CONFIG);
        }
    };
    match ringcast_bench::floor::serve(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err, cli::EXIT_FAILURE),
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let config = match args.settings.load() {
        Ok(config) => config,
        Err(err) => return fail(&err, cli::EXIT_CONFIG),
    };
    if args.print_config {
        return print_config(&config);
    }
    let logs = ringcast::logging::init(config.log_format);
    let outcome = run_server(args, config);
    // Every line logged is written (the writer thread drains its queue)
    // before an error is printed or the process exits.
    drop(logs);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err @ StartError::Config(_)) => fail(&err, cli::EXIT_CONFIG),
        Err(err) => fail(&err, cli::EXIT_FAILURE),
    }
}

fn run_server(args: &ServeArgs, config: Config) -> Result<(), StartError> {
    let ports = if args.share_ports {
        startup::Ports::Shared
    } else {
        startup::Ports::Own
    };
    let prepared = startup::prepare_with(config, ports)?;
    // SIGHUP reads the same file with the same flags again.
    let settings = args.settings.clone();
    let source: ringcast::reload::ConfigSource = std::sync::Arc::new(move || settings.load());
    ringcast::server::run(prepared, source)
}

fn print_config(config: &Config) -> ExitCode {
    match config.to_toml() {
        Ok(text) => {
            println!("# ringcast effective configuration: defaults < --config file < flags");
            println!("# (shards and cpus, when absent: one shard per usable CPU)");
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err, cli::EXIT_FAILURE),
    }
}

fn check_config(path: &Path) -> ExitCode {
    match Config::from_file(path) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err, cli::EXIT_CONFIG),
    }
}

fn doctor(args: &cli::DoctorArgs) -> ExitCode {
    let config = match args.settings.load() {
        Ok(config) => config,
        Err(err) => return fail(&err, cli::EXIT_CONFIG),
    };
    let findings = ringcast::doctor::run(&config);
    print!("{}", ringcast::doctor::report(&findings));
    if findings
        .iter()
        .any(|f| f.level == ringcast::doctor::Level::Fail)
    {
        ExitCode::from(cli::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

fn fail(err: &dyn std::error::Error, status: u8) -> ExitCode {
    eprintln!("error: {}", config::error_report(err));
    ExitCode::from(status)
}
