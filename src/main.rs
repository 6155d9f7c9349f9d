//! The `classify-image` command: parse, run, map errors to exit codes (see `classify_image::error::exit`).
mod app;
mod cli;
mod manage;
mod report;
mod video;

use clap::Parser;
use classify_image::error::{exit, Error};

fn main() {
    // Like other Unix tools, end quietly when stdout's reader goes away (`| head`), instead of panicking in
    // println!. SAFETY: restoring a signal's default action, before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let opts = match cli::Opts::try_parse() {
        Ok(opts) => opts,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            std::process::exit(exit::OK);
        }
        Err(e) => {
            eprintln!("{}", one_line(&e.render().to_string()));
            std::process::exit(exit::USAGE);
        }
    };
    quiet_opencv();
    classify_image::cleanup::install_signal_handler();
    let result = match opts.command {
        Some(cli::Command::Weights(command)) => manage::run(command, opts.network.fetch()).map(|()| exit::OK),
        Some(cli::Command::Devices) => {
            println!("cuda hooks registered: {}", if tch::utils::has_cudart() { "yes" } else { "no" });
            println!("cuda devices: {}", tch::Cuda::device_count());
            println!("default device: {:?}", classify_image::config::default_device());
            Ok(exit::OK)
        }
        None => opts.resolve().map_err(anyhow::Error::from).and_then(app::run).map(|outcome| match outcome.failed {
            0 => exit::OK,
            _ => exit::FAILURE, // some inputs failed; each was reported
        }),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(e.downcast_ref::<Error>().map_or(exit::FAILURE, Error::exit_code));
        }
    }
}

/// clap's usage errors span several lines; keep the error and its hint on one.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// OpenCV logs its own warnings to stderr; our errors already say what went wrong, on one line.
fn quiet_opencv() {
    let _ = opencv::core::set_log_level(opencv::core::LogLevel::LOG_LEVEL_ERROR);
}
