/**
 * The WASI imports the test guests use, in WAT, for the wasm tests and the fuzzer's WASM seeds:
 * one spelling of the allowed signatures (lib/wasm/policy.ts), so a policy change is made once.
 * Guests declare their own memory.
 */
export const WASI_IMPORTS = `
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))`;
