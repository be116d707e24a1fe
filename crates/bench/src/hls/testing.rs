//! CMAF built by hand, as a packager writes it: init segments and
//! fragments for the tests of [`super::fmp4`] and of the player.

/// A box: size, name, body.
pub fn mp4_box(name: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(name);
    out.extend_from_slice(body);
    out
}

/// A full box: version and flags, then `body`.
pub fn full_box(name: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut inner = ((u32::from(version) << 24) | flags).to_be_bytes().to_vec();
    inner.extend_from_slice(body);
    mp4_box(name, &inner)
}

fn trak(id: u32, handler: &[u8; 4], timescale: u32) -> Vec<u8> {
    let mut tkhd = vec![0; 8];
    tkhd.extend(id.to_be_bytes());
    tkhd.extend([0; 60]);
    let mut mdhd = vec![0; 8];
    mdhd.extend(timescale.to_be_bytes());
    mdhd.extend([0; 8]);
    let mut hdlr = vec![0; 4];
    hdlr.extend(handler);
    hdlr.extend([0; 13]);
    let mdia = [
        full_box(b"mdhd", 0, 0, &mdhd),
        full_box(b"hdlr", 0, 0, &hdlr),
    ]
    .concat();
    let trak = [full_box(b"tkhd", 0, 3, &tkhd), mp4_box(b"mdia", &mdia)].concat();
    mp4_box(b"trak", &trak)
}

/// `ftyp` + `moov`: video track 1 at 90 kHz, audio track 2 at 48 kHz,
/// with `trex` defaults (audio samples sync by default).
pub fn init_segment() -> Vec<u8> {
    let trex = |id: u32, flags: u32| {
        let mut body = id.to_be_bytes().to_vec();
        body.extend([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        body.extend(flags.to_be_bytes());
        full_box(b"trex", 0, 0, &body)
    };
    let mvex = mp4_box(
        b"mvex",
        &[trex(1, 0x0101_0000), trex(2, 0x0200_0000)].concat(),
    );
    let moov = [
        full_box(b"mvhd", 0, 0, &[0; 96]),
        trak(1, b"vide", 90_000),
        trak(2, b"soun", 48_000),
        mvex,
    ]
    .concat();
    [
        mp4_box(b"ftyp", b"iso6\0\0\0\0iso6cmfc"),
        mp4_box(b"moov", &moov),
    ]
    .concat()
}

/// One sample of a run: its data, duration and whether it is sync.
pub struct Sample<'a> {
    pub data: &'a [u8],
    pub duration: u32,
    pub sync: bool,
}

/// `moof` + `mdat`: one `traf` per run (track id, `tfdt`, samples),
/// each `trun` with a data offset and per-sample duration, size,
/// flags and composition offset, as ringcast's packager writes them.
pub fn fragment(sequence: u32, runs: &[(u32, u64, &[Sample<'_>])]) -> Vec<u8> {
    let trafs_len = |offsets: &[i32]| -> Vec<u8> {
        let mut trafs = Vec::new();
        for ((track, base, samples), offset) in runs.iter().zip(offsets) {
            let tfhd = full_box(b"tfhd", 0, 0x02_0000, &track.to_be_bytes());
            let tfdt = full_box(b"tfdt", 1, 0, &base.to_be_bytes());
            let mut trun = (samples.len() as u32).to_be_bytes().to_vec();
            trun.extend(offset.to_be_bytes());
            for sample in *samples {
                trun.extend(sample.duration.to_be_bytes());
                trun.extend((sample.data.len() as u32).to_be_bytes());
                let flags: u32 = if sample.sync {
                    0x0200_0000
                } else {
                    0x0101_0000
                };
                trun.extend(flags.to_be_bytes());
                trun.extend(0u32.to_be_bytes());
            }
            let trun = full_box(b"trun", 0, 0xF01, &trun);
            trafs.extend(mp4_box(b"traf", &[tfhd, tfdt, trun].concat()));
        }
        trafs
    };
    let mfhd = full_box(b"mfhd", 0, 0, &sequence.to_be_bytes());
    // The moof's size does not depend on the offsets: measure it,
    // then place each run's data after it and the mdat header.
    let zeros = vec![0; runs.len()];
    let moof_len = mp4_box(b"moof", &[mfhd.clone(), trafs_len(&zeros)].concat()).len();
    let mut offsets = Vec::new();
    let mut at = moof_len + 8;
    for (_, _, samples) in runs {
        offsets.push(at as i32);
        at += samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let moof = mp4_box(b"moof", &[mfhd, trafs_len(&offsets)].concat());
    let data: Vec<u8> = runs
        .iter()
        .flat_map(|(_, _, samples)| samples.iter().flat_map(|s| s.data.iter().copied()))
        .collect();
    [moof, mp4_box(b"mdat", &data)].concat()
}

/// An AVCC access unit: each NAL unit with its 4-byte length.
pub fn avcc(nals: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in nals {
        out.extend((nal.len() as u32).to_be_bytes());
        out.extend(*nal);
    }
    out
}
