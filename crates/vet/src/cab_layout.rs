//! A cabinet's layout, read before the `cab` crate is asked for its files.
//!
//! `cab` 0.6.0, the latest release, panics when asked for a file that
//! starts past the end of its folder's data (an index out of bounds:
//! mdsteele/rust-cab#37 and #41, fixed upstream after the release), or
//! past the end of a stored block's data when the block declares more
//! than it holds (a subtraction that overflows, then a slice out of
//! range). A hostile cabinet is free to declare either. Reading the
//! header, the folder and file tables and the chain of data block
//! headers, as MS-CAB lays them out, tells which files are safe to ask for.

/// For each file entry, in the order `cab` lists them (folder by folder,
/// each folder's files in table order), whether asking `cab` for it is
/// safe: `cab` seeks to the file's start, block by block, and the block
/// it stops in holds at least that many bytes; or the chain of block
/// headers breaks before the start, and `cab` stops with an error there.
/// `None` when the tables do not read.
pub(crate) fn files_within_folders(data: &[u8]) -> Option<Vec<bool>> {
    const RESERVE_PRESENT: u16 = 0x0004;
    const PREVIOUS_CABINET: u16 = 0x0001;
    const NEXT_CABINET: u16 = 0x0002;
    const STORED: u16 = 0;

    let mut r = Reader { data, at: 0 };
    if r.bytes(4)? != b"MSCF" {
        return None;
    }
    r.skip(4 + 4 + 4)?; // reserved, cbCabinet, reserved
    let files_at = r.u32()? as usize;
    r.skip(4 + 2)?; // reserved, version
    let folder_count = r.u16()? as usize;
    let file_count = r.u16()? as usize;
    let flags = r.u16()?;
    r.skip(2 + 2)?; // setID, iCabinet
    let (mut folder_reserve, mut data_reserve) = (0, 0);
    if flags & RESERVE_PRESENT != 0 {
        let header_reserve = r.u16()? as usize;
        folder_reserve = r.u8()? as usize;
        data_reserve = r.u8()? as usize;
        r.skip(header_reserve)?;
    }
    for flag in [PREVIOUS_CABINET, NEXT_CABINET] {
        if flags & flag != 0 {
            r.c_string()?; // cabinet name
            r.c_string()?; // disk name
        }
    }

    // Folders may share block chains in a hostile cabinet: the headers
    // read in all are bounded by what the data could hold, not by
    // folders times blocks.
    let mut header_budget = data.len() / 8 + 1;
    let mut folders = Vec::with_capacity(folder_count.min(data.len() / 8));
    for _ in 0..folder_count {
        let first_block = r.u32()? as usize;
        let block_count = r.u16()?;
        let stored = r.u16()? & 0x000f == STORED;
        r.skip(folder_reserve)?;
        let mut folder = Folder {
            blocks: Vec::new(),
            whole: true,
        };
        let mut blocks = Reader {
            data,
            at: first_block,
        };
        for _ in 0..block_count {
            header_budget = header_budget.checked_sub(1)?;
            let header = blocks.skip(4).and_then(|()| {
                let compressed = blocks.u16()?;
                let size = blocks.u16()?;
                blocks.skip(data_reserve)?;
                Some((compressed, size))
            });
            let Some((compressed, size)) = header else {
                folder.whole = false;
                break;
            };
            let start = folder.blocks.last().map_or(0, |b| b.end);
            folder.blocks.push(Block {
                end: start + u64::from(size),
                // Decompressing yields exactly the declared size or fails;
                // a stored block yields what it holds.
                holds: u64::from(if stored { compressed } else { size }),
            });
            // The next header follows this block's data, whether or not
            // the data is all there.
            blocks.at = blocks.at.saturating_add(usize::from(compressed));
        }
        folders.push(folder);
    }

    r.at = files_at;
    let mut files = Vec::with_capacity(file_count.min(data.len() / 16));
    for _ in 0..file_count {
        r.skip(4)?; // cbFile
        let start = u64::from(r.u32()?);
        let folder = r.u16()? as usize;
        r.skip(2 + 2 + 2)?; // date, time, attributes
        r.c_string()?;
        files.push((folder, folders.get(folder)?.can_seek(start)));
    }
    // `cab` groups the files by folder, keeping their table order.
    files.sort_by_key(|&(folder, _)| folder);
    Some(files.into_iter().map(|(_, safe)| safe).collect())
}

/// A folder's data blocks, as far as their headers read.
struct Folder {
    blocks: Vec<Block>,
    /// Every block the folder declares has a readable header.
    whole: bool,
}

struct Block {
    /// Where the block ends in the folder's uncompressed data, as declared.
    end: u64,
    /// How many bytes `cab` has of it once read.
    holds: u64,
}

impl Folder {
    /// Whether `cab` seeks to `start` without panicking.
    fn can_seek(&self, start: u64) -> bool {
        if start == 0 {
            return true;
        }
        // `cab` walks to the first block ending at or after `start`.
        let k = self.blocks.partition_point(|b| b.end < start);
        match self.blocks.get(k) {
            Some(block) => {
                let block_start = k.checked_sub(1).map_or(0, |i| self.blocks[i].end);
                start - block_start <= block.holds
            }
            // Past the last header read: an error at a broken header, a
            // panic past the declared end.
            None => !self.whole,
        }
    }
}

/// Little-endian reads that stop (`None`) at the end of the data.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.data.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(drop)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.bytes(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }

    fn c_string(&mut self) -> Option<()> {
        let rest = self.data.get(self.at..)?;
        let len = rest.iter().position(|&b| b == 0)?;
        self.at += len + 1;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FindingId;
    use std::io::Write;

    /// One stored folder of `files`, written by the `cab` crate.
    fn cabinet(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = cab::CabinetBuilder::new();
        let folder = builder.add_folder(cab::CompressionType::None);
        for (name, _) in files {
            folder.add_file(*name);
        }
        let mut writer = builder.build(std::io::Cursor::new(Vec::new())).unwrap();
        let mut contents = files.iter();
        while let Some(mut file) = writer.next_file().unwrap() {
            file.write_all(contents.next().unwrap().1).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    /// Where fields of a cabinet from [`cabinet`] with files `a.dll` and
    /// `b.dll` are: b.dll's `uoffFolderStart`, the folder's `cCFData`,
    /// and its first data block's header.
    struct Layout {
        b_start: usize,
        block_count: usize,
        block: usize,
    }

    fn layout(cab: &[u8]) -> Layout {
        let u32_at = |at: usize| u32::from_le_bytes(cab[at..at + 4].try_into().unwrap()) as usize;
        Layout {
            // a.dll's entry: 16 bytes and "a.dll\0"; then b.dll's cbFile.
            b_start: u32_at(16) + 16 + 6 + 4,
            block_count: 36 + 4,
            block: u32_at(36),
        }
    }

    fn two_files() -> (Vec<u8>, Layout) {
        let cab = cabinet(&[("a.dll", b"first"), ("b.dll", b"second")]);
        let at = layout(&cab);
        (cab, at)
    }

    /// The check clears a.dll alone, and unpacking reads it and reports
    /// b.dll (where `cab` would panic) as malformed.
    fn only_a_is_read(cab: Vec<u8>) {
        assert_eq!(files_within_folders(&cab), Some(vec![true, false]));
        let out = crate::unpack::unpack_bytes("x.cab", cab, &crate::unpack::Limits::default());
        let paths: Vec<&str> = out.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["x.cab", "x.cab!/a.dll"]);
        assert!(
            out.findings
                .iter()
                .any(|f| f.id == FindingId::ArchiveMalformed && f.file == "x.cab!/b.dll"),
            "{:?}",
            out.findings
        );
    }

    #[test]
    fn a_well_formed_cabinet_is_all_safe() {
        let (cab, _) = two_files();
        assert_eq!(files_within_folders(&cab), Some(vec![true, true]));
        let out = crate::unpack::unpack_bytes("x.cab", cab, &crate::unpack::Limits::default());
        let data: Vec<&[u8]> = out.entries[1..].iter().map(|e| &e.data[..]).collect();
        assert_eq!(data, [&b"first"[..], b"second"]);
    }

    #[test]
    fn a_file_past_its_folders_data_is_not_read() {
        let (mut cab, at) = two_files();
        cab[at.b_start..at.b_start + 4].copy_from_slice(&1000u32.to_le_bytes());
        only_a_is_read(cab);
    }

    #[test]
    fn a_folder_without_data_blocks_is_not_read_past_its_start() {
        // a.dll starts at 0, which `cab` reads as empty; b.dll past the end.
        let (mut cab, at) = two_files();
        cab[at.block_count..at.block_count + 2].copy_from_slice(&0u16.to_le_bytes());
        only_a_is_read(cab);
    }

    #[test]
    fn a_file_past_what_a_stored_block_holds_is_not_read() {
        // The one block holds 11 bytes but declares 100 (and no checksum,
        // which would give it away); b.dll starts at 50.
        let (mut cab, at) = two_files();
        cab[at.block..at.block + 4].copy_from_slice(&[0; 4]);
        cab[at.block + 6..at.block + 8].copy_from_slice(&100u16.to_le_bytes());
        cab[at.b_start..at.b_start + 4].copy_from_slice(&50u32.to_le_bytes());
        only_a_is_read(cab);
    }

    #[test]
    fn truncated_tables_do_not_read() {
        let (cab, at) = two_files();
        for len in [0, 3, 20, 40, at.b_start] {
            assert_eq!(files_within_folders(&cab[..len]), None, "{len} bytes");
        }
        assert_eq!(files_within_folders(b"MSCZ not a cabinet"), None);
    }
}
