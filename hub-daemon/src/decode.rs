//! `hearthd decode …`: technician decoding of GATT characteristics, board frames and BTHome adverts, as JSON.
//! (Filled in when the protocol crate's decoders land.)

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum DecodeCommand {
    /// A Bluetooth SIG characteristic value: `decode gatt 2a35 <hex>`.
    Gatt { uuid: String, payload: String },
    /// A board frame (COBS-encoded, hex).
    Frame { hex: String },
    /// BTHome v2 service data (hex).
    Bthome {
        hex: String,
        #[arg(long)]
        mac: Option<String>,
        #[arg(long)]
        key: Option<String>,
    },
}

pub fn run(_cmd: DecodeCommand) -> ExitCode {
    eprintln!("not implemented yet");
    ExitCode::FAILURE
}
