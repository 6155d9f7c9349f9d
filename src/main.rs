//! The `classify-image` command: parse, dispatch, print an error on one line, exit with its code (see
//! `classify_image::error::exit`).
mod cli;
mod eval;
mod hints;
mod manage;
mod pipeline;
mod quantize;
mod report;
mod resume;
mod shard;

use clap::{CommandFactory, Parser};
use classify_image::error::{exit, Error};

fn main() {
    // SIGPIPE stays ignored (Rust's default): a closed stdout (`| head`) is a write error that the report
    // handles, ending the printing quietly while the files the run was asked for are still written.
    silence_c_stderr();
    classify_image::keep_freed_memory();
    // clap prints --help and --version (exit code 0) and usage errors (exit code 2) itself.
    let opts = cli::Opts::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        end(e.exit_code())
    });
    let _ = opencv::core::set_log_level(opencv::core::LogLevel::LOG_LEVEL_SILENT);
    classify_image::cleanup::install_signal_handler(report::close_interrupted_json);
    let result = match opts.command {
        Some(cli::Command::Weights(command)) => manage::run(command),
        Some(cli::Command::Devices) => devices(),
        Some(cli::Command::Completions { shell }) => completions(shell),
        Some(cli::Command::Man) => man(),
        Some(cli::Command::Eval(opts)) => opts.resolve().and_then(eval::run).map(i32::from),
        Some(cli::Command::Quantize(opts)) => opts.resolve().and_then(quantize::run),
        None => opts.resolve().and_then(pipeline::run).map(i32::from),
    };
    match result {
        Ok(code) => end(code),
        Err(e) => {
            eprintln!("error: {}", hints::message(&e));
            end(e.exit_code())
        }
    }
}

/// Ends the process without C++'s static destructors: at `exit` libtorch deregisters each of its thousands of
/// operators one by one, about 0.13 s of CPU per run on a 2-core EPYC, more than classifying a small image with
/// Lite0. By the time `main` gets here every file the run wrote is closed and renamed into place (each lives in
/// a scope that has ended), so only Rust's buffered stdout is left to flush.
fn end(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: _exit ends the process at once; nothing in it needs to run afterwards.
    unsafe { libc::_exit(code) }
}

fn devices() -> Result<i32, Error> {
    let cpu = classify_image::cpu::Cpu::detect();
    let native = |yes: bool, how: &str| {
        if yes {
            format!("native ({how})")
        } else {
            "converted in software (no native instructions: 3 to 4 times slower than fp32)".to_string()
        }
    };
    let bf16 = if classify_image::models::onednn::bf16_convolutions() {
        native(cpu.native_bf16(), if cpu.has("amx_bf16") { "AMX" } else { "AVX512_BF16" })
    } else {
        "not available (oneDNN has no bfloat16 convolutions for this CPU: they need AVX-512 or AVX-NE-CONVERT)"
            .to_string()
    };
    let int8 = if cpu.native_int8() {
        format!("native ({})", if cpu.has("amx_int8") { "AMX" } else { "VNNI" })
    } else {
        "without VNNI (8-bit products summed in 16 bits; slower, and may saturate)".to_string()
    };
    report::print(&format!(
        "cuda hooks registered: {}\ncuda devices: {}\ndefault device: {}\ncpu: {}\ncpu features: {}\n\
         libtorch cpu kernels: {}\ncpu convolutions: {}\ncpu precisions: fp32 native; bf16 {bf16}; int8 {int8}; fp16 on CUDA only\n",
        if tch::utils::has_cudart() { "yes" } else { "no" },
        tch::Cuda::device_count(),
        cli::device_name(classify_image::config::default_device()),
        if cpu.model.is_empty() { "unknown" } else { &cpu.model },
        if cpu.features.is_empty() {
            "none of avx2, avx512f, vnni, bf16, amx".to_string()
        } else {
            cpu.features.join(" ")
        },
        classify_image::cpu::libtorch_kernels(),
        classify_image::models::onednn::describe(),
    ))?;
    Ok(exit::OK)
}

fn completions(shell: clap_complete::Shell) -> Result<i32, Error> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli::Opts::command(), "classify-image", &mut script);
    report::print(&String::from_utf8_lossy(&script))?;
    Ok(exit::OK)
}

fn man() -> Result<i32, Error> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cli::Opts::command()).render(&mut page).map_err(report::stdout_error)?;
    report::print(&String::from_utf8_lossy(&page))?;
    Ok(exit::OK)
}

/// The C libraries behind OpenCV's decoders print their own warnings through C's `stderr` stream ("Premature
/// end of JPEG file", "libpng warning: …"). The decoder's damage checks report those as one warning line naming
/// the file, so the C stream is pointed at /dev/null once, before any thread starts. Rust's own stderr (file
/// descriptor 2) is untouched: our messages, progress bars and libtorch's warnings still appear.
fn silence_c_stderr() {
    extern "C" {
        static mut stderr: *mut libc::FILE;
    }
    // SAFETY: glibc's `stderr` is an assignable variable; this runs before any other thread exists, and the
    // stream it points to stays open for the life of the process.
    unsafe {
        let null = libc::fopen(c"/dev/null".as_ptr(), c"w".as_ptr());
        if !null.is_null() {
            stderr = null;
        }
    }
}
