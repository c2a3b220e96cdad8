//! A zip archive written front to back into a channel, never held whole: entries are stored
//! (images are compressed already), each followed by a data descriptor with its CRC-32 and size,
//! so nothing needs to be known before its bytes pass. ZIP64 records are added only where an
//! offset, size or count outgrows the classic fields (an export of many large images may pass 4 GiB).
//! Only the central directory (a name and three numbers per entry) stays in memory until the end.

use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::sync::mpsc;

/// Small writes are gathered into chunks of this size before they go to the channel.
const CHUNK_BYTES: usize = 64 * 1024;
/// General-purpose flags: bit 3 (sizes in a data descriptor), bit 11 (UTF-8 names).
const FLAGS: u16 = 0x0808;
const VERSION_CLASSIC: u16 = 20;
const VERSION_ZIP64: u16 = 45;
const U32_MAX: u64 = 0xFFFF_FFFF;

/// The reader of the archive went away (the client disconnected); stop writing.
#[derive(Debug, thiserror::Error)]
#[error("the archive's reader is gone")]
pub struct ReaderGone;

/// What the body of the answer reads: chunks of the archive, or an error that aborts it.
pub type ArchiveChunk = Result<Bytes, std::io::Error>;

#[derive(Debug)]
struct CentralEntry {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
}

/// A zip archive being written into a channel.
#[derive(Debug)]
pub struct ZipStream {
    out: mpsc::Sender<ArchiveChunk>,
    buffer: BytesMut,
    written: u64,
    entries: Vec<CentralEntry>,
    dos_time: u16,
    dos_date: u16,
}

/// The entry being written: its bytes go through [`ZipStream::write`] and it ends with
/// [`ZipStream::finish_entry`].
#[derive(Debug)]
pub struct OpenEntry {
    name: String,
    offset: u64,
    size: u64,
    crc: crc32fast::Hasher,
}

impl ZipStream {
    /// An archive whose entries are dated `unix_secs` (UTC), written into `out`.
    pub fn new(out: mpsc::Sender<ArchiveChunk>, unix_secs: i64) -> ZipStream {
        let (dos_time, dos_date) = dos_date_time(unix_secs);
        ZipStream {
            out,
            buffer: BytesMut::with_capacity(CHUNK_BYTES),
            written: 0,
            entries: Vec::new(),
            dos_time,
            dos_date,
        }
    }

    /// Bytes handed to the channel or buffered so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Starts entry `name` (a `/`-separated path) with its local header.
    pub async fn start_entry(&mut self, name: &str) -> Result<OpenEntry, ReaderGone> {
        let entry = OpenEntry {
            name: name.to_owned(),
            offset: self.written,
            size: 0,
            crc: crc32fast::Hasher::new(),
        };
        let mut header = BytesMut::with_capacity(30 + name.len());
        header.put_u32_le(0x0403_4b50);
        header.put_u16_le(VERSION_CLASSIC);
        header.put_u16_le(FLAGS);
        header.put_u16_le(0); // stored
        header.put_u16_le(self.dos_time);
        header.put_u16_le(self.dos_date);
        header.put_u32_le(0); // CRC-32, size and compressed size follow in the data descriptor
        header.put_u32_le(0);
        header.put_u32_le(0);
        header.put_u16_le(name_len(name));
        header.put_u16_le(0);
        header.put_slice(name.as_bytes());
        self.put(&header).await?;
        Ok(entry)
    }

    /// Appends `data` to the open `entry`.
    pub async fn write(&mut self, entry: &mut OpenEntry, data: &[u8]) -> Result<(), ReaderGone> {
        entry.crc.update(data);
        entry.size += data.len() as u64;
        self.put(data).await
    }

    /// Appends a chunk that is already `Bytes` (a storage object's), without copying it when large.
    pub async fn write_bytes(
        &mut self,
        entry: &mut OpenEntry,
        data: Bytes,
    ) -> Result<(), ReaderGone> {
        if data.len() < CHUNK_BYTES / 4 {
            return self.write(entry, &data).await;
        }
        entry.crc.update(&data);
        entry.size += data.len() as u64;
        self.flush().await?;
        self.written += data.len() as u64;
        self.send(data).await
    }

    /// Ends `entry` with its data descriptor.
    pub async fn finish_entry(&mut self, entry: OpenEntry) -> Result<(), ReaderGone> {
        let crc = entry.crc.finalize();
        let mut descriptor = BytesMut::with_capacity(24);
        descriptor.put_u32_le(0x0807_4b50);
        descriptor.put_u32_le(crc);
        if entry.size >= U32_MAX {
            descriptor.put_u64_le(entry.size);
            descriptor.put_u64_le(entry.size);
        } else {
            descriptor.put_u32_le(entry.size as u32);
            descriptor.put_u32_le(entry.size as u32);
        }
        self.put(&descriptor).await?;
        self.entries.push(CentralEntry {
            name: entry.name,
            crc,
            size: entry.size,
            offset: entry.offset,
        });
        Ok(())
    }

    /// Writes the central directory and the end records, and flushes everything.
    pub async fn finish(mut self) -> Result<(), ReaderGone> {
        let directory_start = self.written;
        let entries = std::mem::take(&mut self.entries);
        for entry in &entries {
            let record = self.central_record(entry);
            self.put(&record).await?;
        }
        let directory_size = self.written - directory_start;
        let count = entries.len() as u64;
        let zip64 = count >= 0xFFFF || directory_start >= U32_MAX || directory_size >= U32_MAX;
        let mut end = BytesMut::with_capacity(98);
        if zip64 {
            let record_at = self.written;
            end.put_u32_le(0x0606_4b50);
            end.put_u64_le(44);
            end.put_u16_le(VERSION_ZIP64);
            end.put_u16_le(VERSION_ZIP64);
            end.put_u32_le(0);
            end.put_u32_le(0);
            end.put_u64_le(count);
            end.put_u64_le(count);
            end.put_u64_le(directory_size);
            end.put_u64_le(directory_start);
            end.put_u32_le(0x0706_4b50);
            end.put_u32_le(0);
            end.put_u64_le(record_at);
            end.put_u32_le(1);
        }
        end.put_u32_le(0x0605_4b50);
        end.put_u16_le(0);
        end.put_u16_le(0);
        end.put_u16_le(count.min(0xFFFF) as u16);
        end.put_u16_le(count.min(0xFFFF) as u16);
        end.put_u32_le(directory_size.min(U32_MAX) as u32);
        end.put_u32_le(directory_start.min(U32_MAX) as u32);
        end.put_u16_le(0);
        self.put(&end).await?;
        self.flush().await
    }

    /// Aborts the archive: the reader gets an error instead of a cut file that looks whole.
    pub async fn abort(self, why: &str) {
        let _ = self
            .out
            .send(Err(std::io::Error::other(why.to_owned())))
            .await;
    }

    fn central_record(&self, entry: &CentralEntry) -> BytesMut {
        let mut extra = BytesMut::new();
        if entry.size >= U32_MAX {
            extra.put_u64_le(entry.size);
            extra.put_u64_le(entry.size);
        }
        if entry.offset >= U32_MAX {
            extra.put_u64_le(entry.offset);
        }
        let zip64_extra_len = extra.len();
        let mut record = BytesMut::with_capacity(46 + entry.name.len() + 4 + zip64_extra_len);
        let version = if zip64_extra_len > 0 {
            VERSION_ZIP64
        } else {
            VERSION_CLASSIC
        };
        record.put_u32_le(0x0201_4b50);
        record.put_u16_le(VERSION_ZIP64 | (3 << 8)); // made by: Unix, spec 4.5
        record.put_u16_le(version);
        record.put_u16_le(FLAGS);
        record.put_u16_le(0);
        record.put_u16_le(self.dos_time);
        record.put_u16_le(self.dos_date);
        record.put_u32_le(entry.crc);
        record.put_u32_le(entry.size.min(U32_MAX) as u32);
        record.put_u32_le(entry.size.min(U32_MAX) as u32);
        record.put_u16_le(name_len(&entry.name));
        record.put_u16_le(if zip64_extra_len > 0 {
            4 + zip64_extra_len as u16
        } else {
            0
        });
        record.put_u16_le(0); // comment
        record.put_u16_le(0); // disk
        record.put_u16_le(0); // internal attributes
        record.put_u32_le(0o100_644 << 16); // a regular file, rw-r--r--
        record.put_u32_le(entry.offset.min(U32_MAX) as u32);
        record.put_slice(entry.name.as_bytes());
        if zip64_extra_len > 0 {
            record.put_u16_le(0x0001);
            record.put_u16_le(zip64_extra_len as u16);
            record.put_slice(&extra);
        }
        record
    }

    async fn put(&mut self, data: &[u8]) -> Result<(), ReaderGone> {
        self.written += data.len() as u64;
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ReaderGone> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = self.buffer.split().freeze();
        self.send(chunk).await
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), ReaderGone> {
        self.out.send(Ok(chunk)).await.map_err(|_| ReaderGone)
    }
}

/// Names are our own (`member.json`, `images/<object key>`), far below 64 KiB.
fn name_len(name: &str) -> u16 {
    u16::try_from(name.len()).unwrap_or(u16::MAX)
}

/// MS-DOS time and date fields of `unix_secs` (UTC; before 1980 clamps to 1980-01-01).
fn dos_date_time(unix_secs: i64) -> (u16, u16) {
    let at = heart_shared::wire::utc_datetime(unix_secs);
    if at.year() < 1980 {
        return (0, (1 << 5) | 1);
    }
    let year = u16::try_from(at.year() - 1980).unwrap_or(127).min(127);
    let date = (year << 9) | (u16::from(u8::from(at.month())) << 5) | u16::from(at.day());
    let time =
        (u16::from(at.hour()) << 11) | (u16::from(at.minute()) << 5) | (u16::from(at.second()) / 2);
    (time, date)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn archive(entries: &[(&str, &[&[u8]])]) -> Vec<u8> {
        let (tx, mut rx) = mpsc::channel(4);
        let names: Vec<(String, Vec<Vec<u8>>)> = entries
            .iter()
            .map(|(n, parts)| (n.to_string(), parts.iter().map(|p| p.to_vec()).collect()))
            .collect();
        let writer = tokio::spawn(async move {
            let mut zip = ZipStream::new(tx, 1_795_651_199);
            for (name, parts) in names {
                let mut entry = zip.start_entry(&name).await.expect("reader");
                for part in parts {
                    zip.write_bytes(&mut entry, Bytes::from(part))
                        .await
                        .expect("reader");
                }
                zip.finish_entry(entry).await.expect("reader");
            }
            zip.finish().await.expect("reader");
        });
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend_from_slice(&chunk.expect("chunk"));
        }
        writer.await.expect("writer");
        out
    }

    fn read_back(bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
        use std::io::Read as _;
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
        (0..zip.len())
            .map(|i| {
                let mut file = zip.by_index(i).expect("entry");
                let mut data = Vec::new();
                file.read_to_end(&mut data)
                    .expect("entry data, CRC checked");
                (file.name().to_owned(), data)
            })
            .collect()
    }

    #[tokio::test]
    async fn entries_read_back_with_names_and_bytes() {
        let big = vec![7u8; 200_000];
        let bytes = archive(&[
            ("member.json", &[b"{\"a\":", b"1}"]),
            ("images/posts/2026/11/25/x.jpg", &[&big, b"tail"]),
            ("empty.json", &[]),
        ])
        .await;
        let read = read_back(bytes);
        assert_eq!(read.len(), 3);
        assert_eq!(read[0], ("member.json".into(), b"{\"a\":1}".to_vec()));
        assert_eq!(read[1].0, "images/posts/2026/11/25/x.jpg");
        assert_eq!(read[1].1.len(), 200_004);
        assert_eq!(read[2], ("empty.json".into(), Vec::new()));
    }

    #[tokio::test]
    async fn more_entries_than_the_classic_count_use_zip64_records() {
        const ONE_BYTE: &[&[u8]] = &[b"x"];
        let names: Vec<String> = (0..70_000).map(|i| format!("e/{i}.txt")).collect();
        let entries: Vec<(&str, &[&[u8]])> = names.iter().map(|n| (n.as_str(), ONE_BYTE)).collect();
        let bytes = archive(&entries).await;
        let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip64 archive");
        assert_eq!(zip.len(), 70_000);
    }

    #[tokio::test]
    async fn a_gone_reader_stops_the_writer() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut zip = ZipStream::new(tx, 0);
        let mut entry = zip.start_entry("a").await.expect("buffered, not sent yet");
        let sent = zip
            .write_bytes(&mut entry, Bytes::from(vec![0u8; CHUNK_BYTES]))
            .await;
        assert!(sent.is_err());
    }

    #[test]
    fn dos_dates_count_from_1980() {
        // 2026-11-25T23:59:58Z
        let (time, date) = dos_date_time(1_795_651_198);
        assert_eq!(date >> 9, 46);
        assert_eq!((date >> 5) & 0xF, 11);
        assert_eq!(date & 0x1F, 25);
        assert_eq!(time >> 11, 23);
        assert_eq!((time >> 5) & 0x3F, 59);
        assert_eq!(time & 0x1F, 29);
        assert_eq!(dos_date_time(0), (0, 33));
    }
}
