//! `hearth-community` commands: `run`, `user add`, `check-config`, `print-default-config`.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::accounts;
use crate::clock::{AnyClock, Clock, SystemClock};
use crate::config::{Config, DEFAULT_CONFIG};
use crate::service;
use crate::store::{Role, Store};

#[derive(Parser)]
#[command(
    name = "hearth-community",
    about = "Hearth community hub: alerts from every home, the nurse dashboard"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the service.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Manage dashboard accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Validate a configuration file.
    CheckConfig { path: PathBuf },
    /// Print the embedded default configuration.
    PrintDefaultConfig,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add an account. The password is read from the first line of standard input (never from the command line,
    /// which other users can see).
    Add {
        /// Database URL (sqlite:… or postgres://…); defaults to the one in --config.
        #[arg(long)]
        database: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        username: String,
        /// nurse or technician
        #[arg(long)]
        role: Role,
    },
}

impl clap::builder::ValueParserFactory for Role {
    type Parser = clap::builder::ValueParser;
    fn value_parser() -> Self::Parser {
        clap::builder::ValueParser::new(|s: &str| s.parse::<Role>())
    }
}

fn load(path: &PathBuf) -> anyhow::Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Config::parse(&text, path)?)
}

pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::PrintDefaultConfig => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::CheckConfig { path } => {
            load(&path)?;
            println!("{}: ok", path.display());
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    database,
                    config,
                    username,
                    role,
                },
        } => {
            let url = match (database, config) {
                (Some(u), _) => u,
                (None, Some(c)) => load(&c)?.database.url,
                (None, None) => anyhow::bail!("give --database URL or --config FILE"),
            };
            accounts::check_username(&username)?;
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let hash = accounts::hash_password(password)?;
            let store = Store::connect(&url, 1).await?;
            store
                .add_user(&username, role.as_str(), &hash, SystemClock.now_ms())
                .await?;
            store.close().await;
            println!("added {username} ({})", role.as_str());
            Ok(())
        }
        Command::Run { config } => {
            let cfg = load(&config)?;
            let shutdown = CancellationToken::new();
            let running =
                service::start(cfg, AnyClock::System(SystemClock), shutdown.clone()).await?;
            println!("hearth-community: dashboard on http://{}", running.http);
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            shutdown.cancel();
            running.join().await;
            Ok(())
        }
    }
}
