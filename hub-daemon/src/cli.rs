//! The `hearthd` command line. Each command is a thin call into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::clock::SystemClock;
use crate::config::{Config, DEFAULT_CONFIG};
use crate::{daemon, decode, demo, telemetry};

#[derive(Parser)]
#[command(
    name = "hearthd",
    version,
    about = "Hearth hub daemon: home telemonitoring for frail patients"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Write {"pid","http","sensors_broker"} here once ready (for supervisors and tests).
        #[arg(long)]
        ready_file: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// A simulated home with a deteriorating patient, alerts shown as a community nurse would see them.
    Demo {
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration_s: Option<u64>,
    },
    /// Validate a configuration file.
    CheckConfig { file: PathBuf },
    /// Print the embedded default configuration.
    PrintDefaultConfig,
    /// List devices and when they were last seen (reads the database).
    Devices {
        #[arg(long)]
        config: PathBuf,
    },
    /// List alerts (reads the database).
    Alerts {
        #[arg(long)]
        config: PathBuf,
        /// Include resolved alerts.
        #[arg(long)]
        all: bool,
    },
    /// Check the audit chain: detects an edited or deleted audit row.
    AuditVerify {
        #[arg(long)]
        config: PathBuf,
    },
    /// Decode a payload for a technician; prints JSON.
    #[command(subcommand)]
    Decode(decode::DecodeCommand),
    /// Score a set of observations with NEWS2 (RCP 2017); prints JSON.
    News2(crate::news2_cmd::News2Args),
    /// Bluetooth LE: scan for nearby devices, enrol one.
    #[command(subcommand)]
    Ble(crate::sources::ble::cli::BleCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::PrintDefaultConfig => {
            print!("{DEFAULT_CONFIG}");
            ExitCode::SUCCESS
        }
        Command::Decode(cmd) => decode::run(cmd),
        Command::News2(args) => crate::news2_cmd::run(args),
        Command::Ble(cmd) => crate::sources::ble::cli::run(cmd),
        Command::Run {
            config,
            ready_file,
            log_format,
        } => {
            telemetry::init_logging(matches!(log_format, LogFormat::Json));
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            block_on(async move {
                let shutdown = CancellationToken::new();
                spawn_signal_handler(shutdown.clone());
                daemon::run(cfg, SystemClock, shutdown, |bound| {
                    if let Some(path) = &ready_file
                        && let Err(e) = daemon::write_ready_file(path, bound)
                    {
                        tracing::error!(error = %e, "cannot write the ready file");
                    }
                })
                .await
            })
        }
        Command::Demo { duration_s } => {
            telemetry::init_logging(false);
            block_on(async move {
                let shutdown = CancellationToken::new();
                spawn_signal_handler(shutdown.clone());
                demo::run(shutdown, duration_s).await
            })
        }
        Command::AuditVerify { config } => {
            block_on(async move { crate::cli_views::audit_verify(&config).await })
        }
        Command::Devices { config } => {
            block_on(async move { crate::cli_views::devices(&config).await })
        }
        Command::Alerts { config, all } => {
            block_on(async move { crate::cli_views::alerts(&config, all).await })
        }
    }
}

fn block_on(f: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM both mean "stop cleanly".
fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        shutdown.cancel();
    });
}
