;; A small numeric model: x <- softsign(W x), repeated N times, with W (64 x 64, f32) drawn
;; from random_get, so the weights are a function of the request seed.
;; stdin: N as a little-endian u32, then up to 64 little-endian f32 (missing ones are 0).
;; stdout: the 64 f32 of x, little-endian (256 bytes). A NaN input stays NaN and is written as
;; the canonical NaN 0x7fc00000 on every node.
;; Run: atoma wasm run examples/model.wat --input input.bin --seed 7 --json
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  ;; 0: iovec; 8: bytes read; 512: input (4 + 256 bytes); 1024: x; 2048: y; 4096: W (16 KiB)
  (memory (export "memory") 1)
  (func $read_input
    (local $got i32) (local $n i32)
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $got) (i32.const 260)))
        (i32.store (i32.const 0) (i32.add (i32.const 512) (local.get $got)))
        (i32.store (i32.const 4) (i32.sub (i32.const 260) (local.get $got)))
        (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $got (i32.add (local.get $got) (local.get $n)))
        (br $more))))
  (func (export "_start")
    (local $it i32) (local $i i32) (local $j i32) (local $acc f32) (local $p i32)
    (call $read_input)
    ;; W[i] = ((w >> 8) * 2^-23 - 1) / 8 for random words w: exact values in [-1/8, 1/8)
    (drop (call $random_get (i32.const 4096) (i32.const 16384)))
    (local.set $p (i32.const 4096))
    (loop $w
      (f32.store (local.get $p)
        (f32.mul
          (f32.sub (f32.mul (f32.convert_i32_u (i32.shr_u (i32.load (local.get $p)) (i32.const 8))) (f32.const 0x1p-23)) (f32.const 1))
          (f32.const 0.125)))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br_if $w (i32.lt_u (local.get $p) (i32.const 20480))))
    (memory.copy (i32.const 1024) (i32.const 516) (i32.const 256))
    (local.set $it (i32.load (i32.const 512)))
    (block $end
      (loop $iter
        (br_if $end (i32.eqz (local.get $it)))
        (local.set $i (i32.const 0))
        (loop $row
          (local.set $acc (f32.const 0))
          (local.set $j (i32.const 0))
          (local.set $p (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 8))))
          (loop $col
            (local.set $acc (f32.add (local.get $acc)
              (f32.mul (f32.load (i32.add (local.get $p) (local.get $j))) (f32.load offset=1024 (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br_if $col (i32.lt_u (local.get $j) (i32.const 256))))
          (f32.store offset=2048 (i32.shl (local.get $i) (i32.const 2))
            (f32.div (local.get $acc) (f32.add (f32.const 1) (f32.abs (local.get $acc)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $row (i32.lt_u (local.get $i) (i32.const 64))))
        (memory.copy (i32.const 1024) (i32.const 2048) (i32.const 256))
        (local.set $it (i32.sub (local.get $it) (i32.const 1)))
        (br $iter)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 256))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
