;; The WebAssembly SIMD loops of the float32 CPU kernel (the engine around them: ./wasm-engine.ts).
;; Assembled by wabt at build time (scripts/build-wasm.ts, `npm run build`) into
;; ./bn-simd.wasm.ts; edit this file, never that one.
;;
;;   sums(p, runs, n, stride, K, out)
;;                           out[0] = Σ (x - K), out[1] = Σ (x - K)² over `runs` runs of n float32
;;                           (stride bytes apart) from p, in float64: 8 interleaved vector chains
;;                           plus one scalar chain, merged at the end.
;;   affine(p, runs, n, stride, mh, ml, a, b)
;;                           in place, x := ((x - mh) - ml)·a + b in float32. The mean is the
;;                           float32 pair mh + ml: x - mh is exact when x is near the mean
;;                           (Sterbenz), so a large offset loses nothing to the rounding of the mean.
;;   rowSums / rowAffine     the same two loops for the rows ("channels-last") layout, sweeping
;;                           each row's W lanes four at a time with per-lane tables.
;;
;; Memory is imported, so the engine can grow it and keep its own views.
(module
  (import "env" "memory" (memory 1))

  ;; sums(p, runs, n, stride, K, out): shifted sums over `runs` runs of n floats, the runs
  ;; `stride` bytes apart (one channel's runs where they lie in a tensor; runs = 1 for contiguous
  ;; data). 8 floats a step go into 8 float64 chains (floats 0-1, 2-3, 4-5, 6-7 as f64x2), so the
  ;; adds of consecutive steps do not wait on each other; each pair is loaded alone into the low
  ;; half of a vector and promoted (cheaper than shuffling the high half down). The n mod 8
  ;; floats at the end of each run go into one more (scalar) chain.
  (func $sums (export "sums") (param $p i32) (param $runs i32) (param $n i32) (param $stride i32) (param $K f64) (param $out i32)
    (local $q i32) (local $end8 i32) (local $end i32)
    (local $Kv v128) (local $s1a v128) (local $s1b v128) (local $s1c v128) (local $s1d v128)
    (local $s2a v128) (local $s2b v128) (local $s2c v128) (local $s2d v128)
    (local $d v128) (local $e v128)
    (local $t1 f64) (local $t2 f64) (local $ds f64)
    (local.set $Kv (f64x2.splat (local.get $K)))
    (block $runsDone
      (loop $run
        (br_if $runsDone (i32.eqz (local.get $runs)))
        ;; end = q + 4n; end8 = q + 32·(n >> 3)
        (local.set $q (local.get $p))
        (local.set $end (i32.add (local.get $q) (i32.shl (local.get $n) (i32.const 2))))
        (local.set $end8 (i32.add (local.get $q) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $q) (local.get $end8)))
            ;; floats 0-1 and 4-5
            (local.set $d (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $q))) (local.get $Kv)))
            (local.set $e (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=16 (local.get $q))) (local.get $Kv)))
            (local.set $s1a (f64x2.add (local.get $d) (local.get $s1a)))
            (local.set $s2a (f64x2.add (f64x2.mul (local.get $d) (local.get $d)) (local.get $s2a)))
            (local.set $s1c (f64x2.add (local.get $e) (local.get $s1c)))
            (local.set $s2c (f64x2.add (f64x2.mul (local.get $e) (local.get $e)) (local.get $s2c)))
            ;; floats 2-3 and 6-7
            (local.set $d (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $q))) (local.get $Kv)))
            (local.set $e (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=24 (local.get $q))) (local.get $Kv)))
            (local.set $s1b (f64x2.add (local.get $d) (local.get $s1b)))
            (local.set $s2b (f64x2.add (f64x2.mul (local.get $d) (local.get $d)) (local.get $s2b)))
            (local.set $s1d (f64x2.add (local.get $e) (local.get $s1d)))
            (local.set $s2d (f64x2.add (f64x2.mul (local.get $e) (local.get $e)) (local.get $s2d)))
            (local.set $q (i32.add (local.get $q) (i32.const 32)))
            (br $next)))
        ;; the run's last n mod 8 floats
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
            (local.set $ds (f64.sub (f64.promote_f32 (f32.load (local.get $q))) (local.get $K)))
            (local.set $t1 (f64.add (local.get $ds) (local.get $t1)))
            (local.set $t2 (f64.add (f64.mul (local.get $ds) (local.get $ds)) (local.get $t2)))
            (local.set $q (i32.add (local.get $q) (i32.const 4)))
            (br $next)))
        (local.set $p (i32.add (local.get $p) (local.get $stride)))
        (local.set $runs (i32.sub (local.get $runs) (i32.const 1)))
        (br $run)))
    ;; merge the chains: ((a + c) + (b + d)), its two lanes, then the scalar chain
    (local.set $s1a (f64x2.add (f64x2.add (local.get $s1a) (local.get $s1c)) (f64x2.add (local.get $s1b) (local.get $s1d))))
    (local.set $s2a (f64x2.add (f64x2.add (local.get $s2a) (local.get $s2c)) (f64x2.add (local.get $s2b) (local.get $s2d))))
    (f64.store (local.get $out)
      (f64.add (f64.add (f64x2.extract_lane 0 (local.get $s1a)) (f64x2.extract_lane 1 (local.get $s1a))) (local.get $t1)))
    (f64.store offset=8 (local.get $out)
      (f64.add (f64.add (f64x2.extract_lane 0 (local.get $s2a)) (f64x2.extract_lane 1 (local.get $s2a))) (local.get $t2))))

  ;; affine(p, runs, n, stride, mh, ml, a, b): in place over `runs` runs of n floats, `stride`
  ;; bytes apart, x := ((x - mh) - ml)·a + b in float32.
  (func $affine (export "affine") (param $p i32) (param $runs i32) (param $n i32) (param $stride i32) (param $mh f32) (param $ml f32) (param $a f32) (param $b f32)
    (local $q i32) (local $end4 i32) (local $end i32)
    (local $MH v128) (local $ML v128) (local $A v128) (local $B v128)
    (local.set $MH (f32x4.splat (local.get $mh)))
    (local.set $ML (f32x4.splat (local.get $ml)))
    (local.set $A (f32x4.splat (local.get $a)))
    (local.set $B (f32x4.splat (local.get $b)))
    (block $runsDone
      (loop $run
        (br_if $runsDone (i32.eqz (local.get $runs)))
        (local.set $q (local.get $p))
        (local.set $end (i32.add (local.get $q) (i32.shl (local.get $n) (i32.const 2))))
        (local.set $end4 (i32.add (local.get $q) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $q) (local.get $end4)))
            (v128.store align=4 (local.get $q)
              (f32x4.add
                (f32x4.mul (f32x4.sub (f32x4.sub (v128.load align=4 (local.get $q)) (local.get $MH)) (local.get $ML)) (local.get $A))
                (local.get $B)))
            (local.set $q (i32.add (local.get $q) (i32.const 16)))
            (br $next)))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
            (f32.store (local.get $q)
              (f32.add
                (f32.mul (f32.sub (f32.sub (f32.load (local.get $q)) (local.get $mh)) (local.get $ml)) (local.get $a))
                (local.get $b)))
            (local.set $q (i32.add (local.get $q) (i32.const 4)))
            (br $next)))
        (local.set $p (i32.add (local.get $p) (local.get $stride)))
        (local.set $runs (i32.sub (local.get $runs) (i32.const 1)))
        (br $run))))

  ;; rowSums(px, rowBytes, pairs, acc, blocks): the lane sums of the rows path. The data is rows
  ;; of W lanes (rowBytes = 4W apart); lanes are taken four at a time (blocks = ceil(W/4)), and
  ;; each 4-lane block owns 96 bytes at acc + 96·b: K (2 f64x2), s1 (2 f64x2), s2 (2 f64x2).
  ;; Each call adds `pairs` pairs of rows: d = f64(x) - K, s1 += d0 + d1, s2 += d0² + d1²
  ;; (float64, one accumulator per lane). The last block may read up to 3 floats past a row (into
  ;; the next row, or the caller's slack); those padding lanes accumulate garbage never read.
  (func $rowSums (export "rowSums") (param $px i32) (param $rowBytes i32) (param $pairs i32) (param $acc i32) (param $blocks i32)
    (local $p i32) (local $pa i32) (local $pend i32)
    (local $q i32) (local $d0 v128) (local $d1 v128)
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.eqz (local.get $pairs)))
        (local.set $p (local.get $px))
        (local.set $pa (local.get $acc))
        (local.set $pend (i32.add (local.get $px) (i32.shl (local.get $blocks) (i32.const 4))))
        (block $blocksDone
          (loop $blocks
            (br_if $blocksDone (i32.ge_u (local.get $p) (local.get $pend)))
            ;; $q: the same lanes one row down
            (local.set $q (i32.add (local.get $p) (local.get $rowBytes)))
            ;; lanes 0, 1 of the block: K at +0, s1 at +32, s2 at +64
            (local.set $d0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero align=1 (local.get $p))) (v128.load (local.get $pa))))
            (local.set $d1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero align=1 (local.get $q))) (v128.load (local.get $pa))))
            (v128.store offset=32 (local.get $pa)
              (f64x2.add (v128.load offset=32 (local.get $pa)) (f64x2.add (local.get $d0) (local.get $d1))))
            (v128.store offset=64 (local.get $pa)
              (f64x2.add (v128.load offset=64 (local.get $pa))
                (f64x2.add (f64x2.mul (local.get $d0) (local.get $d0)) (f64x2.mul (local.get $d1) (local.get $d1)))))
            ;; lanes 2, 3: K at +16, s1 at +48, s2 at +80
            (local.set $d0 (f64x2.sub
              (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 align=1 (local.get $p)))
              (v128.load offset=16 (local.get $pa))))
            (local.set $d1 (f64x2.sub
              (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 align=1 (local.get $q)))
              (v128.load offset=16 (local.get $pa))))
            (v128.store offset=48 (local.get $pa)
              (f64x2.add (v128.load offset=48 (local.get $pa)) (f64x2.add (local.get $d0) (local.get $d1))))
            (v128.store offset=80 (local.get $pa)
              (f64x2.add (v128.load offset=80 (local.get $pa))
                (f64x2.add (f64x2.mul (local.get $d0) (local.get $d0)) (f64x2.mul (local.get $d1) (local.get $d1)))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $pa (i32.add (local.get $pa) (i32.const 96)))
            (br $blocks)))
        (local.set $px (i32.add (local.get $px) (i32.shl (local.get $rowBytes) (i32.const 1))))
        (local.set $pairs (i32.sub (local.get $pairs) (i32.const 1)))
        (br $rows))))

  ;; rowAffine(src, dst, rows, rowBytes, tab, blocks): per lane, dst = (src - MH)·A + B in
  ;; float32, with 48 bytes of table per 4-lane block at tab + 48·b: MH, A, B (f32x4 each). Out of
  ;; place: the padding lanes of a row's last block write up to 3 floats into the next row of dst,
  ;; which that row's own pass then overwrites (rows go in order), and past the last row into the
  ;; caller's slack.
  (func $rowAffine (export "rowAffine") (param $src i32) (param $dst i32) (param $rows i32) (param $rowBytes i32) (param $tab i32) (param $blocks i32)
    (local $p i32) (local $q i32) (local $pt i32) (local $pend i32)
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.eqz (local.get $rows)))
        (local.set $p (local.get $src))
        (local.set $q (local.get $dst))
        (local.set $pt (local.get $tab))
        (local.set $pend (i32.add (local.get $src) (i32.shl (local.get $blocks) (i32.const 4))))
        (block $blocksDone
          (loop $block
            (br_if $blocksDone (i32.ge_u (local.get $p) (local.get $pend)))
            (v128.store align=1 (local.get $q)
              (f32x4.add
                (f32x4.mul
                  (f32x4.sub (v128.load align=1 (local.get $p)) (v128.load (local.get $pt)))
                  (v128.load offset=16 (local.get $pt)))
                (v128.load offset=32 (local.get $pt))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $q (i32.add (local.get $q) (i32.const 16)))
            (local.set $pt (i32.add (local.get $pt) (i32.const 48)))
            (br $block)))
        (local.set $src (i32.add (local.get $src) (local.get $rowBytes)))
        (local.set $dst (i32.add (local.get $dst) (local.get $rowBytes)))
        (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
        (br $row))))
)
