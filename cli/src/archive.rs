//! `acre archive` and `acre retrieve`: files through the archival storage layer and back.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use acre_consensus::{BlockNumber, ProtocolParams, SegmentHeader};
use acre_storage::archive_dir;
use acre_storage::{ArchivedSegment, Archiver, BlockReconstructor, recover_segment};
use anyhow::{Context, Result, bail, ensure};
use indicatif::{ProgressBar, ProgressStyle};

const MIB: f64 = (1 << 20) as f64;

/// A progress bar on stderr (hidden when stderr is not a terminal); `counts` describes the position,
/// such as `{bytes}/{total_bytes} ({bytes_per_sec}` or `{pos}/{len} segments ({per_sec}`.
fn progress_bar(len: u64, counts: &str) -> ProgressBar {
    let template = format!("{{spinner}} [{{elapsed_precise}}] [{{bar:40}}] {counts}, eta {{eta}}) {{msg}}");
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(len).with_style(style)
}

fn throughput(bytes: u64, elapsed: Duration) -> String {
    format!(
        "{:.1} MiB/s",
        bytes as f64 / MIB / elapsed.as_secs_f64().max(1e-9)
    )
}

/// Reads until `buffer` is full or the reader is exhausted; returns the bytes read.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Reads `input` as blocks of `block_size` bytes and sends every sealed segment to `sender`.
fn produce_segments(
    params: &ProtocolParams,
    file: &Path,
    input: &mut File,
    file_len: u64,
    block_size: usize,
    sender: std::sync::mpsc::SyncSender<ArchivedSegment>,
) -> Result<()> {
    let send = |segment: ArchivedSegment| {
        sender
            .send(segment)
            .map_err(|_| anyhow::anyhow!("the writer stopped (see the error it reported)"))
    };
    let mut archiver = Archiver::new(params.clone()).context("invalid parameter set")?;
    let progress = progress_bar(file_len, "{bytes}/{total_bytes} ({bytes_per_sec}");
    let mut buffer = vec![0u8; block_size];
    let mut number = 0u64;
    loop {
        let read = read_full(input, &mut buffer).with_context(|| format!("reading {}", file.display()))?;
        // An empty file is archived as one empty block, so every archive has at least one segment.
        if read == 0 && number > 0 {
            break;
        }
        for segment in archiver.add_block(BlockNumber(number), &buffer[..read])? {
            progress.set_message(format!("segment {}", segment.header.segment_index));
            send(segment)?;
        }
        number += 1;
        progress.inc(read as u64);
        if read < buffer.len() {
            break;
        }
    }
    if let Some(segment) = archiver.close_segment()? {
        send(segment)?;
    }
    progress.finish_and_clear();
    Ok(())
}

/// Archives `file` into `dir` as blocks of `block_size` bytes.
pub(crate) fn archive(params: &ProtocolParams, file: &Path, dir: &Path, block_size: usize) -> Result<()> {
    let start = Instant::now();
    let mut input = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let file_len = input
        .metadata()
        .with_context(|| format!("reading metadata of {}", file.display()))?
        .len();
    archive_dir::create(dir)?;

    // Sealed segments go to a writer thread, so writing one segment's pieces overlaps with erasure
    // coding the next (one segment in flight bounds the memory).
    let (sender, receiver) = std::sync::mpsc::sync_channel::<ArchivedSegment>(1);
    let headers = std::thread::scope(|scope| -> Result<Vec<SegmentHeader>> {
        let writer = scope.spawn(move || -> Result<Vec<SegmentHeader>> {
            let mut headers = Vec::new();
            for segment in receiver {
                headers.push(segment.header);
                archive_dir::write_segment(dir, &segment.pieces, &headers)?;
            }
            Ok(headers)
        });
        let produced = produce_segments(params, file, &mut input, file_len, block_size, sender);
        let written = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
        let headers = written?;
        produced?;
        Ok(headers)
    })?;
    let number = headers
        .last()
        .map_or(0, |header| header.last_archived_block.number.0 + 1);

    let elapsed = start.elapsed();
    let pieces = headers.len() * params.pieces_per_segment() as usize;
    println!(
        "archived {} ({file_len} bytes, {number} blocks) into {}: {} segments, {pieces} pieces in {:.2} s ({})",
        file.display(),
        dir.display(),
        headers.len(),
        elapsed.as_secs_f64(),
        throughput(file_len, elapsed),
    );
    Ok(())
}

/// Rebuilds the file archived in `dir` into `file`, trusting only the headers file.
pub(crate) fn retrieve(params: &ProtocolParams, dir: &Path, file: &Path) -> Result<()> {
    let start = Instant::now();
    let headers = archive_dir::read_headers(dir)?;
    let last = headers
        .last()
        .context("the headers file holds at least one header")?
        .last_archived_block;
    ensure!(
        last.is_complete(),
        "the archive is incomplete: its last segment ends inside block {} (was archiving interrupted?)",
        last.number
    );

    let tmp = file.with_extension("retrieving");
    let result = retrieve_into(params, dir, &headers, &tmp);
    if result.is_err() {
        // Leave nothing half-written behind; the error says what went wrong.
        let _ = std::fs::remove_file(&tmp);
    }
    let (written, read_bytes, missing, corrupted) = result?;
    std::fs::rename(&tmp, file)
        .with_context(|| format!("renaming {} to {}", tmp.display(), file.display()))?;

    let elapsed = start.elapsed();
    println!(
        "retrieved {} ({written} bytes) from {} segments in {:.2} s ({} of pieces read); \
         {missing} missing and {corrupted} corrupted pieces tolerated",
        file.display(),
        headers.len(),
        elapsed.as_secs_f64(),
        throughput(read_bytes, elapsed),
    );
    Ok(())
}

/// Rebuilds every segment into `tmp`; returns (bytes written, piece bytes read, missing, corrupted).
fn retrieve_into(
    params: &ProtocolParams,
    dir: &Path,
    headers: &[SegmentHeader],
    tmp: &Path,
) -> Result<(u64, u64, usize, usize)> {
    let mut output =
        BufWriter::new(File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?);
    let progress = progress_bar(headers.len() as u64, "{pos}/{len} segments ({per_sec}");
    let mut reconstructor = BlockReconstructor::new();
    let (mut written, mut read_bytes, mut missing, mut corrupted) = (0u64, 0u64, 0usize, 0usize);
    let mut next_block = BlockNumber(0);
    for header in headers {
        let index = header.segment_index;
        progress.set_message(format!("segment {index}"));
        let found = archive_dir::read_pieces(params, dir, index)?;
        read_bytes += found.bytes_read;
        for (position, reason) in &found.undecodable {
            progress.suspend(|| {
                eprintln!("warning: segment {index} piece {position} is corrupted ({reason}); ignored")
            });
        }
        let absent = found.pieces.iter().filter(|piece| piece.is_none()).count() - found.undecodable.len();
        let recovered = recover_segment(params, header, &found.pieces).with_context(|| {
            format!(
                "cannot rebuild segment {index}: {absent} of {} pieces are missing and {} are corrupted",
                found.pieces.len(),
                found.undecodable.len()
            )
        })?;
        for (position, reason) in &recovered.rejected {
            progress.suspend(|| {
                eprintln!("warning: segment {index} piece {position} is corrupted ({reason}); ignored")
            });
        }
        missing += absent;
        corrupted += found.undecodable.len() + recovered.rejected.len();
        for (number, block) in reconstructor.add_segment(header, &recovered.segment_bytes())? {
            if number != next_block {
                bail!("segment {index} yields block {number} where block {next_block} was expected");
            }
            next_block = BlockNumber(number.0 + 1);
            output
                .write_all(&block)
                .with_context(|| format!("writing {}", tmp.display()))?;
            written += block.len() as u64;
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let output = output
        .into_inner()
        .map_err(|error| error.into_error())
        .context("flushing output")?;
    output
        .sync_all()
        .with_context(|| format!("syncing {}", tmp.display()))?;
    Ok((written, read_bytes, missing, corrupted))
}
