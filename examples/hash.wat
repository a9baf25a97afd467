;; FNV-1a (64-bit) of stdin, printed as 16 lowercase hex digits and a newline.
;; Run: atoma wasm run examples/hash.wat --input FILE
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec (ptr, len); 8: bytes read or written; 32: hex digits; 64: output line; 1024: input buffer (64 KiB)
  (memory (export "memory") 2)
  (data (i32.const 32) "0123456789abcdef")
  (func (export "_start")
    (local $h i64) (local $n i32) (local $i i32)
    (local.set $h (i64.const 0xcbf29ce484222325))
    (block $eof
      (loop $read
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 65536))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 2))))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $i (i32.const 0))
        (loop $byte
          (local.set $h (i64.mul (i64.xor (local.get $h) (i64.load8_u offset=1024 (local.get $i))) (i64.const 0x100000001b3)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $byte (i32.lt_u (local.get $i) (local.get $n))))
        (br $read)))
    ;; most significant nibble first
    (local.set $i (i32.const 0))
    (loop $hex
      (i32.store8 offset=64 (local.get $i)
        (i32.load8_u offset=32
          (i32.wrap_i64 (i64.and
            (i64.shr_u (local.get $h) (i64.extend_i32_u (i32.sub (i32.const 60) (i32.shl (local.get $i) (i32.const 2)))))
            (i64.const 15)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $hex (i32.lt_u (local.get $i) (i32.const 16))))
    (i32.store8 (i32.const 80) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 17))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
