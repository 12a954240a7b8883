//! Files radotpctl writes: backups, QR code images (and the terminal QR), man pages.

use std::path::PathBuf;

use super::*;

#[derive(Default)]
pub(crate) struct QrOutput {
    pub(crate) terminal: bool,
    pub(crate) png: Option<PathBuf>,
}

/// Writes a backup as a new private file (see [`radotp::private_file`]):
/// an existing file is replaced only with `force`, and only if it is the
/// caller's own regular file; links are never followed.
pub(crate) fn write_backup(
    backup: &radotp::domain::backup::Backup,
    path: &std::path::Path,
    force: bool,
) -> Result<(), String> {
    use std::io::Write;
    radotp::private_file::write_private(path, force, |file| {
        let mut writer = std::io::BufWriter::new(file);
        serde_json::to_writer(&mut writer, backup).map_err(std::io::Error::other)?;
        writer.write_all(b"\n")?;
        writer.flush()
    })
    .map_err(|e| match e {
        radotp::private_file::PrivateFileError::Exists(_) => format!("{e} (--force replaces it)"),
        other => other.to_string(),
    })
}

/// Writes the QR code of `text` as a greyscale PNG (8 pixels a module, 4-module margin).
pub(crate) fn write_qr_png(text: &str, path: &std::path::Path) -> Result<(), String> {
    const SCALE: usize = 8;
    const MARGIN: usize = 4;
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * MARGIN) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            if colors[y * modules + x] == qrcode::Color::Dark {
                for dy in 0..SCALE {
                    let row = (y + MARGIN) * SCALE + dy;
                    let start = row * side + (x + MARGIN) * SCALE;
                    pixels[start..start + SCALE].fill(0);
                }
            }
        }
    }
    // The QR code carries the seed: private to the operator, like a backup,
    // and never written through a link or into another user's file.
    radotp::private_file::write_private(path, true, |file| {
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer.write_image_data(&pixels).map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
    .map_err(|e| e.to_string())
}

pub(crate) fn write_man_pages(dir: &std::path::Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    fn write(command: clap::Command, name: String, dir: &std::path::Path, count: &mut usize) -> std::io::Result<()> {
        let command = command.name(name.clone());
        let mut buffer = Vec::new();
        clap_mangen::Man::new(command.clone()).render(&mut buffer)?;
        std::fs::write(dir.join(format!("{name}.1")), buffer)?;
        *count += 1;
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            write(sub.clone(), format!("{name}-{}", sub.get_name()), dir, count)?;
        }
        Ok(())
    }
    let mut count = 0;
    let mut command = <Cli as clap::CommandFactory>::command();
    command.build();
    write(command, "radotpctl".into(), dir, &mut count)?;
    Ok(count)
}
