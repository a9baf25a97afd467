;; A JSON transform: minifies JSON read on stdin (drops whitespace outside strings, keeps
;; strings and escapes byte for byte). An unterminated string is an error: a message on
;; stderr and exit code 1.
;; Run: echo '{ "a": [1, 2], "b": "x y" }' | atoma wasm run examples/json-minify.wat --input -
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec for reads; 8: bytes read; 16: iovec for writes; 24: bytes written; 64: message;
  ;; 1024: input chunk (64 KiB); 66560: output chunk (64 KiB)
  (memory (export "memory") 3)
  (data (i32.const 64) "json: unterminated string\n")
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func (export "_start")
    (local $n i32) (local $i i32) (local $c i32) (local $o i32) (local $in_string i32) (local $escaped i32)
    (block $eof
      (loop $read
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 65536))
        (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $i (i32.const 0))
        (local.set $o (i32.const 0))
        (loop $byte
          (local.set $c (i32.load8_u offset=1024 (local.get $i)))
          (block $skip
            (if (local.get $in_string)
              (then
                (if (local.get $escaped)
                  (then (local.set $escaped (i32.const 0)))
                  (else
                    (if (i32.eq (local.get $c) (i32.const 92))
                      (then (local.set $escaped (i32.const 1)))
                      (else (if (i32.eq (local.get $c) (i32.const 34)) (then (local.set $in_string (i32.const 0)))))))))
              (else
                (if (i32.eq (local.get $c) (i32.const 34)) (then (local.set $in_string (i32.const 1))))
                (br_if $skip
                  (i32.or
                    (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 10)))
                    (i32.or (i32.eq (local.get $c) (i32.const 9)) (i32.eq (local.get $c) (i32.const 13)))))))
            (i32.store8 offset=66560 (local.get $o) (local.get $c))
            (local.set $o (i32.add (local.get $o) (i32.const 1))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $byte (i32.lt_u (local.get $i) (local.get $n))))
        (call $write (i32.const 1) (i32.const 66560) (local.get $o))
        (br $read)))
    (if (local.get $in_string)
      (then
        (call $write (i32.const 2) (i32.const 64) (i32.const 26))
        (call $proc_exit (i32.const 1))))))
