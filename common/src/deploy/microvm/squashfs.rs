//! The base's root as a squashfs image, which the guest mounts read-only
//! from a virtio disk instead of unpacking it from an initramfs: the guest
//! reads only the pages it uses.
//!
//! Its blocks are stored uncompressed (the image names gzip, which every
//! kernel with squashfs reads, but no block is compressed): under
//! emulation a guest decompresses far slower than it reads. The same
//! entries give the same bytes (mtime 0, entries in path order).

use std::path::Path;

use anyhow::{Context, Result};
use backhand::compression::{CompressionAction, Compressor};
use backhand::{BackhandError, FilesystemCompressor, FilesystemWriter, NodeHeader, SuperBlock};

use super::archive::{Archive, Data};

/// Compression that never pays: the writer keeps a block as it is when
/// its "compressed" form is longer.
struct Stored;

static STORED: Stored = Stored;

impl CompressionAction for Stored {
    type Error = BackhandError;
    type Compressor = Compressor;
    type FilesystemCompressor = FilesystemCompressor;
    type SuperBlock = SuperBlock;

    fn decompress(
        &self,
        bytes: &[u8],
        out: &mut Vec<u8>,
        _: Self::Compressor,
    ) -> Result<(), Self::Error> {
        // never called for stored blocks; kept whole for a reader
        out.extend_from_slice(bytes);
        Ok(())
    }

    fn compress(
        &self,
        bytes: &[u8],
        _: Self::FilesystemCompressor,
        _: u32,
    ) -> Result<Vec<u8>, Self::Error> {
        let mut longer = Vec::with_capacity(bytes.len() + 1);
        longer.extend_from_slice(bytes);
        longer.push(0);
        Ok(longer)
    }
}

/// Writes `archive` as a squashfs image at `out`.
pub(super) fn write(archive: &Archive, out: &Path) -> Result<()> {
    let mut fs = FilesystemWriter::default();
    fs.set_kind(backhand::kind::Kind::new_v4(&STORED));
    fs.set_compressor(FilesystemCompressor::new(Compressor::Gzip, None)?);
    fs.set_time(0);
    fs.set_root_mode(0o755);
    // a whole number of 4 KiB blocks, as a disk is read
    fs.set_kib_padding(4);
    for (path, (mode, uid, gid, data)) in &archive.0 {
        let header = NodeHeader::new(*mode as u16, *uid, *gid, 0);
        let at = path.as_str();
        match data {
            Data::Dir => fs.push_dir(at, header)?,
            Data::Link(target) => fs.push_symlink(target.as_str(), at, header)?,
            Data::Bytes(b) => fs.push_file(std::io::Cursor::new(b.clone()), at, header)?,
            Data::Host(p) => fs.push_file_from_path(p.clone(), at, header)?,
        }
    }
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?,
    );
    fs.write(&mut w)
        .with_context(|| format!("cannot write {}", out.display()))?;
    use std::io::Write;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use backhand::{FilesystemReader, InnerNode};

    #[test]
    fn entries_come_back_with_their_owners_modes_and_bytes_stored_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("prog");
        // larger than a block, and not a run of zeros (stored as a hole)
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&host, &big).unwrap();
        let mut a = Archive::default();
        a.add("/usr/bin/prog", (0o755, 0, 0, Data::Host(host)));
        a.add(
            "/etc/conf",
            (0o640, 1000, 1000, Data::Bytes(b"x = 1\n".to_vec())),
        );
        a.add("/bin/sh", (0o777, 0, 0, Data::Link("busybox".into())));
        a.add("/var/empty", (0o700, 1000, 1000, Data::Dir));
        let (one, two) = (dir.path().join("1.img"), dir.path().join("2.img"));
        write(&a, &one).unwrap();
        write(&a, &two).unwrap();
        let bytes = std::fs::read(&one).unwrap();
        assert_eq!(bytes, std::fs::read(&two).unwrap(), "the same bytes twice");
        assert_eq!(bytes.len() % 4096, 0);
        assert_eq!(&bytes[..4], b"hsqs");
        // the superblock names gzip (1), which every squashfs kernel reads
        assert_eq!(u16::from_le_bytes([bytes[20], bytes[21]]), 1);
        // stored, not compressed: the file's bytes are in the image as they are
        assert!(bytes.windows(4096).any(|w| w == &big[131_072..135_168]));

        let fs = FilesystemReader::from_reader(std::io::Cursor::new(bytes)).unwrap();
        let mut seen = 0;
        for node in fs.files() {
            let h = &node.header;
            match node.fullpath.to_str().unwrap() {
                "/usr/bin/prog" => {
                    assert_eq!((h.permissions, h.uid, h.gid, h.mtime), (0o755, 0, 0, 0));
                    let InnerNode::File(f) = &node.inner else {
                        panic!("not a file")
                    };
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(&mut fs.file(f).reader(), &mut out).unwrap();
                    assert!(out == big, "the file's bytes differ");
                    seen += 1;
                }
                "/etc/conf" => {
                    assert_eq!((h.permissions, h.uid, h.gid), (0o640, 1000, 1000));
                    seen += 1;
                }
                "/bin/sh" => {
                    let InnerNode::Symlink(l) = &node.inner else {
                        panic!("not a link")
                    };
                    assert_eq!(l.link, std::path::PathBuf::from("busybox"));
                    seen += 1;
                }
                "/var/empty" => {
                    assert!(matches!(node.inner, InnerNode::Dir(_)));
                    assert_eq!((h.permissions, h.uid), (0o700, 1000));
                    seen += 1;
                }
                _ => {}
            }
        }
        assert_eq!(seen, 4);
    }
}
