//! Files radotpctl writes: backups, QR code images (and the terminal QR), man pages.

use std::path::PathBuf;

use super::*;

#[derive(Default)]
pub(crate) struct QrOutput {
    pub(crate) terminal: bool,
    pub(crate) png: Option<PathBuf>,
}

pub(crate) fn write_backup(
    backup: &radotp::domain::backup::Backup,
    path: &std::path::Path,
    force: bool,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let file = options.open(path)?;
    // An existing file (--force) keeps its mode on open: make it private too.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let mut writer = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut writer, backup).map_err(std::io::Error::other)?;
    writer.write_all(b"\n")?;
    writer.into_inner().map_err(|e| e.into_error())?.sync_all()
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
    // The QR code carries the seed: private to the operator, like a backup.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
    }
    .map_err(|e| e.to_string())?;
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
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
