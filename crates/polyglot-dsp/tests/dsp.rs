//! The C++ routines through the safe Rust API, against a plain Rust reference of the same
//! FIR and tap design (below), on random signals and on cases whose answer is known.

use polyglot_dsp::{
    fir, lowpass_taps, resample, Error, Window, MAX_OUTPUT_SAMPLES, MAX_RATIO_TERM, MAX_TAPS,
};

// ---------------------------------------------------------------------------------------
// The reference: the textbook definitions, in f64, written for clarity, not speed.

/// `y[n] = Σ_k h[k] x[n - k]`, zero initial state; each sum in f64.
fn reference_fir(x: &[f32], h: &[f32]) -> Vec<f64> {
    (0..x.len())
        .map(|n| {
            (0..h.len().min(n + 1))
                .map(|k| f64::from(h[k]) * f64::from(x[n - k]))
                .sum()
        })
        .collect()
}

/// `Σ_k |h[k] x[n - k]|`: the scale of the rounding error an f32 sum of those terms can
/// make.
fn reference_fir_abs(x: &[f32], h: &[f32]) -> Vec<f64> {
    (0..x.len())
        .map(|n| {
            (0..h.len().min(n + 1))
                .map(|k| (f64::from(h[k]) * f64::from(x[n - k])).abs())
                .sum()
        })
        .collect()
}

/// The window weight of tap `i` of `n`, as documented on [`Window`].
fn reference_window(window: Window, i: usize, n: usize) -> f64 {
    use std::f64::consts::PI;
    if n == 1 {
        return 1.0;
    }
    match window {
        Window::Hamming => 0.54 - 0.46 * (2.0 * PI * i as f64 / (n - 1) as f64).cos(),
        Window::Blackman => {
            let x = (i + 1) as f64 / (n + 1) as f64;
            0.42 - 0.5 * (2.0 * PI * x).cos() + 0.08 * (4.0 * PI * x).cos()
        }
    }
}

/// The windowed sinc `2 fc sinc(2 fc (i - (n - 1) / 2)) · w[i]`, scaled to sum to 1.
fn reference_lowpass(cutoff_hz: f64, rate_hz: f64, n: usize, window: Window) -> Vec<f32> {
    use std::f64::consts::PI;
    let fc = cutoff_hz / rate_hz;
    let centre = (n - 1) as f64 / 2.0;
    let raw: Vec<f64> = (0..n)
        .map(|i| {
            let t = i as f64 - centre;
            let ideal = if t == 0.0 {
                2.0 * fc
            } else {
                (2.0 * PI * fc * t).sin() / (PI * t)
            };
            ideal * reference_window(window, i, n)
        })
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|h| (h / sum) as f32).collect()
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn random_signal(rng: &mut fastrand::Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.f32() * 2.0 - 1.0).collect()
}

fn tone(freq_hz: f64, rate_hz: f64, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (2.0 * std::f64::consts::PI * freq_hz * i as f64 / rate_hz).sin() as f32)
        .collect()
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// The magnitude of `x`'s DFT at `freq_hz`, normalised so a unit sine reads 0.5.
fn dft_magnitude(x: &[f32], freq_hz: f64, rate_hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq_hz / rate_hz;
    let (re, im) = x.iter().enumerate().fold((0.0, 0.0), |(re, im), (i, &v)| {
        let phase = w * i as f64;
        (
            re + f64::from(v) * phase.cos(),
            im - f64::from(v) * phase.sin(),
        )
    });
    (re * re + im * im).sqrt() / x.len() as f64
}

/// The tone's frequency from its upward zero crossings, each placed by linear
/// interpolation between the two samples around it.
fn frequency_by_zero_crossings(x: &[f32], rate_hz: f64) -> f64 {
    let crossings: Vec<f64> = x
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, w)| {
            let (a, b) = (f64::from(w[0]), f64::from(w[1]));
            i as f64 + a / (a - b)
        })
        .collect();
    assert!(crossings.len() >= 2, "too few zero crossings");
    let periods = (crossings.len() - 1) as f64;
    let span = crossings[crossings.len() - 1] - crossings[0];
    periods * rate_hz / span
}

fn invalid_param(e: &Error) -> (&'static str, &'static str) {
    match e {
        Error::InvalidArgument {
            function, param, ..
        } => (function, param),
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// FIR.

#[test]
fn fir_matches_the_reference_on_random_signals() {
    let mut rng = fastrand::Rng::with_seed(0x5eed_0001);
    // Lengths around the C++ block size (1024), taps longer than the signal, one tap.
    let cases = [
        (1, 1),
        (7, 3),
        (3, 10),
        (1000, 64),
        (1024, 64),
        (1025, 64),
        (3 * 1024 + 5, 200),
        (5000, 17),
        (2500, 1),
    ];
    for (len, num_taps) in cases {
        let x = random_signal(&mut rng, len);
        let h = random_signal(&mut rng, num_taps);
        let got = fir(&x, &h).unwrap();
        assert_eq!(got.len(), len);
        let want = reference_fir(&x, &h);
        let scale = reference_fir_abs(&x, &h);
        for n in 0..len {
            // An f32 sum of T products errs by at most about (T + 1) · ε/2 of the sum
            // of their magnitudes; twice that, plus the final rounding, is the bound.
            let tolerance = (num_taps as f64 + 2.0) * f64::from(f32::EPSILON) * scale[n] + 1e-30;
            let err = (f64::from(got[n]) - want[n]).abs();
            assert!(
                err <= tolerance,
                "len {len}, taps {num_taps}, sample {n}: {} vs {} (err {err:e} > {tolerance:e})",
                got[n],
                want[n]
            );
        }
    }
}

#[test]
fn the_impulse_response_is_the_taps() {
    let taps = lowpass_taps(3_000.0, 16_000.0, 31, Window::Hamming).unwrap();
    let mut impulse = vec![0.0f32; 50];
    impulse[0] = 1.0;
    let out = fir(&impulse, &taps).unwrap();
    assert_eq!(&out[..31], &taps[..]);
    assert!(out[31..].iter().all(|&v| v == 0.0));
}

#[test]
fn fir_of_empty_input_is_empty_but_empty_taps_are_refused() {
    assert_eq!(fir(&[], &[1.0, 2.0]).unwrap(), Vec::<f32>::new());
    for samples in [&[][..], &[1.0, 2.0][..]] {
        let e = fir(samples, &[]).unwrap_err();
        assert_eq!(invalid_param(&e), ("fir", "taps"));
        assert_eq!(
            e.message(),
            "taps must hold at least one coefficient, got none"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Low-pass design.

#[test]
fn lowpass_taps_match_the_reference() {
    let cases = [
        (1_000.0, 48_000.0, 63),
        (1_000.0, 48_000.0, 64),
        (20.0, 44_100.0, 1001),
        (23_999.0, 48_000.0, 15),
        (0.1, 1.0, 2),
        (0.25, 1.0, 1),
    ];
    for (cutoff, rate, n) in cases {
        for window in [Window::Hamming, Window::Blackman] {
            let got = lowpass_taps(cutoff, rate, n, window).unwrap();
            let want = reference_lowpass(cutoff, rate, n, window);
            assert_eq!(got.len(), n);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                // Both are the same double-precision formula rounded to f32: they may
                // differ by the last bit of the libm results, no more.
                assert!(
                    (g - w).abs() <= 4.0 * f32::EPSILON * w.abs().max(1e-3),
                    "{cutoff}/{rate} Hz, {n} taps, {window:?}, tap {i}: {g} vs {w}"
                );
            }
            // Linear phase: the taps are symmetric.
            for i in 0..n {
                assert!((got[i] - got[n - 1 - i]).abs() <= f32::EPSILON);
            }
        }
    }
}

#[test]
fn the_lowpass_has_unity_gain_at_dc() {
    for window in [Window::Hamming, Window::Blackman] {
        let taps = lowpass_taps(2_000.0, 48_000.0, 101, window).unwrap();
        let sum: f64 = taps.iter().map(|&t| f64::from(t)).sum();
        assert!((sum - 1.0).abs() < 1e-6, "{window:?}: {sum}");
        // A constant comes out unchanged once the filter is full.
        let out = fir(&[1.0; 400], &taps).unwrap();
        for &v in &out[100..] {
            assert!((v - 1.0).abs() < 1e-5, "{window:?}: {v}");
        }
    }
}

#[test]
fn a_tone_above_the_cutoff_is_attenuated_by_more_than_40_db() {
    let rate = 48_000.0;
    let taps_len = 101;
    for window in [Window::Hamming, Window::Blackman] {
        let taps = lowpass_taps(2_000.0, rate, taps_len, window).unwrap();
        // Well inside the stop band (the transition band is at most 5.5 / 101 · 48 kHz,
        // about 2.6 kHz, wide), and a tone in the pass band for comparison.
        let high = tone(8_000.0, rate, 4_800);
        let low = tone(300.0, rate, 4_800);
        let high_out = fir(&high, &taps).unwrap();
        let low_out = fir(&low, &taps).unwrap();
        // Skip the filter's start-up, where it has not yet seen a full window.
        let stop = db(rms(&high_out[taps_len..]) / rms(&high[taps_len..]));
        let pass = db(rms(&low_out[taps_len..]) / rms(&low[taps_len..]));
        assert!(stop < -40.0, "{window:?}: 8 kHz only {stop:.1} dB down");
        assert!(
            pass.abs() < 0.1,
            "{window:?}: 300 Hz changed by {pass:.2} dB"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Resampling.

#[test]
fn the_output_length_is_the_ceiling_of_n_times_the_ratio() {
    let mut rng = fastrand::Rng::with_seed(0x5eed_0002);
    let rates = [
        (48_000, 44_100),
        (44_100, 48_000),
        (8_000, 44_100),
        (44_100, 8_000),
        (48_000, 16_000),
        (3, 7),
        (22_050, 22_050),
    ];
    for (from, to) in rates {
        for len in [0usize, 1, 2, 146, 147, 159, 160, 161, 1000, 4_801] {
            let x = random_signal(&mut rng, len);
            let out = resample(&x, from, to).unwrap();
            let want = (len as u128 * to as u128).div_ceil(from as u128) as usize;
            assert_eq!(out.len(), want, "{len} samples {from} -> {to}");
        }
    }
}

#[test]
fn a_1_khz_tone_resampled_from_48k_to_44k1_keeps_its_frequency_and_level() {
    let x = tone(1_000.0, 48_000.0, 48_000);
    let y = resample(&x, 48_000, 44_100).unwrap();
    assert_eq!(y.len(), 44_100);
    // The ends fade (samples beyond the input count as zero): judge the middle.
    let middle = &y[2_000..y.len() - 2_000];
    let freq = frequency_by_zero_crossings(middle, 44_100.0);
    assert!((freq - 1_000.0).abs() < 0.1, "{freq} Hz");
    // Its energy is in the 1 kHz bin, not beside it.
    let at = dft_magnitude(middle, 1_000.0, 44_100.0);
    let beside = dft_magnitude(middle, 1_100.0, 44_100.0);
    assert!((at - 0.5).abs() < 0.01, "1 kHz bin {at}");
    assert!(db(beside / at) < -40.0, "1.1 kHz bin {beside}");
    // Level kept, and the samples lie on the sine the output clock expects: output j at
    // time j / 44100 s, the delay of the filter compensated.
    let expected = tone(1_000.0, 44_100.0, y.len());
    for j in 2_000..y.len() - 2_000 {
        assert!(
            (y[j] - expected[j]).abs() < 2e-3,
            "sample {j}: {} vs {}",
            y[j],
            expected[j]
        );
    }
}

#[test]
fn downsampling_removes_what_would_alias() {
    // 6 kHz cannot exist at 8 kHz (Nyquist 4 kHz): unfiltered it would fold to 2 kHz.
    let x = tone(6_000.0, 48_000.0, 48_000);
    let y = resample(&x, 48_000, 8_000).unwrap();
    let middle = &y[500..y.len() - 500];
    let level = db(rms(middle) / rms(&x));
    assert!(level < -60.0, "6 kHz came through at {level:.1} dB");
    // While a tone the new rate can hold passes.
    let x = tone(1_000.0, 48_000.0, 48_000);
    let y = resample(&x, 48_000, 8_000).unwrap();
    let level = db(rms(&y[500..y.len() - 500]) / rms(&x));
    assert!(level.abs() < 0.05, "1 kHz changed by {level:.2} dB");
}

#[test]
fn equal_rates_return_the_samples_unchanged() {
    let x = random_signal(&mut fastrand::Rng::with_seed(3), 1000);
    assert_eq!(resample(&x, 44_100, 44_100).unwrap(), x);
}

#[test]
fn resampling_empty_input_is_empty_but_bad_rates_are_still_refused() {
    assert_eq!(resample(&[], 48_000, 44_100).unwrap(), Vec::<f32>::new());
    let e = resample(&[], 0, 44_100).unwrap_err();
    assert_eq!(invalid_param(&e), ("resample", "from_rate"));
}

#[test]
fn a_huge_output_is_refused_before_any_work() {
    // 1 Hz -> 4096 Hz: 16 385 samples would become 67 112 960, just over 64 Mi.
    let x = vec![0.0f32; MAX_OUTPUT_SAMPLES / MAX_RATIO_TERM as usize + 1];
    let e = resample(&x, 1, MAX_RATIO_TERM).unwrap_err();
    assert_eq!(invalid_param(&e), ("resample", "samples"));
    assert_eq!(
        e.message(),
        "samples is too long: 16385 samples resampled from 1 Hz to 4096 Hz would give more \
         than 67108864 output samples, the limit of one call; resample the signal in pieces"
    );
}

// ---------------------------------------------------------------------------------------
// Invalid arguments: every one an error naming the argument, none a crash or an abort.

#[test]
fn invalid_lowpass_arguments_are_errors_naming_the_argument() {
    let b = Window::Blackman;
    let cases: &[(f64, f64, usize, &str, &str)] = &[
        (
            0.0,
            48_000.0,
            11,
            "cutoff_hz",
            "cutoff_hz must be positive, got 0",
        ),
        (
            -5.0,
            48_000.0,
            11,
            "cutoff_hz",
            "cutoff_hz must be positive, got -5",
        ),
        (
            f64::NAN,
            48_000.0,
            11,
            "cutoff_hz",
            "cutoff_hz must be positive, got nan",
        ),
        (
            24_000.0,
            48_000.0,
            11,
            "cutoff_hz",
            "cutoff_hz must be below the Nyquist frequency (sample_rate_hz / 2 = 24000 Hz), \
             got 24000",
        ),
        (
            24_000.000_1,
            48_000.0,
            11,
            "cutoff_hz",
            "cutoff_hz must be below the Nyquist frequency (sample_rate_hz / 2 = 24000 Hz), \
             got 24000.0001",
        ),
        (
            f64::INFINITY,
            48_000.0,
            11,
            "cutoff_hz",
            "cutoff_hz must be below the Nyquist frequency (sample_rate_hz / 2 = 24000 Hz), \
             got inf",
        ),
        (
            1e-300,
            1e300,
            11,
            "cutoff_hz",
            "cutoff_hz is too small a fraction of sample_rate_hz (1e-300 / 1e+300) to design \
             a filter in double precision",
        ),
        (
            100.0,
            0.0,
            11,
            "sample_rate_hz",
            "sample_rate_hz must be a positive, finite number of Hz, got 0",
        ),
        (
            100.0,
            -8_000.0,
            11,
            "sample_rate_hz",
            "sample_rate_hz must be a positive, finite number of Hz, got -8000",
        ),
        (
            100.0,
            f64::INFINITY,
            11,
            "sample_rate_hz",
            "sample_rate_hz must be a positive, finite number of Hz, got inf",
        ),
        (
            100.0,
            8_000.0,
            0,
            "num_taps",
            "num_taps must be at least 1, got 0",
        ),
        (
            100.0,
            8_000.0,
            MAX_TAPS + 1,
            "num_taps",
            "num_taps must be at most 1048576, got 1048577",
        ),
    ];
    for &(cutoff, rate, n, param, message) in cases {
        let e = lowpass_taps(cutoff, rate, n, b).unwrap_err();
        assert_eq!(invalid_param(&e), ("lowpass_taps", param), "{message}");
        assert_eq!(e.message(), message);
    }
}

#[test]
fn invalid_rates_are_errors_naming_the_argument() {
    let x = [0.5f32; 10];
    let cases: &[(i64, i64, &str, &str)] = &[
        (
            0,
            44_100,
            "from_rate",
            "from_rate must be a positive whole number of Hz, got 0",
        ),
        (
            -48_000,
            44_100,
            "from_rate",
            "from_rate must be a positive whole number of Hz, got -48000",
        ),
        (
            48_000,
            0,
            "to_rate",
            "to_rate must be a positive whole number of Hz, got 0",
        ),
        (
            48_000,
            i64::MIN,
            "to_rate",
            "to_rate must be a positive whole number of Hz, got -9223372036854775808",
        ),
        (
            44_100,
            48_001,
            "from_rate",
            "from_rate and to_rate reduce to the ratio 48001 / 44100 (to / from in lowest \
             terms); terms above 4096 would need an impractically long filter, so pick rates \
             with a larger common divisor",
        ),
        (
            i64::MAX,
            1,
            "from_rate",
            "from_rate and to_rate reduce to the ratio 1 / 9223372036854775807 (to / from in \
             lowest terms); terms above 4096 would need an impractically long filter, so pick \
             rates with a larger common divisor",
        ),
    ];
    for &(from, to, param, message) in cases {
        let e = resample(&x, from, to).unwrap_err();
        assert_eq!(invalid_param(&e), ("resample", param), "{message}");
        assert_eq!(e.message(), message);
        assert_eq!(e.to_string(), format!("resample: invalid `{param}`"));
    }
}

#[test]
fn the_largest_allowed_ratio_terms_work_and_keep_the_level() {
    // 1 Hz -> 4096 Hz: the longest filter (262 145 taps, 65 per phase). A constant stays
    // 1 wherever the filter (32 input samples each side) lies wholly inside the input,
    // give or take the images the stop band lets through (about -74 dB, 2e-4).
    let y = resample(&[1.0; 128], 1, MAX_RATIO_TERM).unwrap();
    assert_eq!(y.len(), 128 * 4096);
    for &v in &y[40 * 4096..88 * 4096] {
        assert!((v - 1.0).abs() < 5e-4, "{v}");
    }
    // And down by the same ratio, where the filter spans 32 output samples each side.
    let y = resample(&vec![1.0; 128 * 4096], MAX_RATIO_TERM, 1).unwrap();
    assert_eq!(y.len(), 128);
    for &v in &y[40..88] {
        assert!((v - 1.0).abs() < 1e-4, "{v}");
    }
}
