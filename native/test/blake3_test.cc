// Standalone BLAKE3 test: the official vectors (all modes, full extended output) on every ISA
// path, incremental updates with awkward split sizes, parallel vs serial on large inputs for
// several thread counts, file hashing (mmap and pipe), and b3sum on random files when present.
//
//   g++ -std=c++17 -O2 -ffp-contract=off -Inative native/test/blake3_test.cc
//       native/hash/blake3*.cc native/cpu/isa.cc native/cpu/thread_pool.cc -pthread -o /tmp/b3t
//   /tmp/b3t [test/fixtures/blake3-test-vectors.json]   (run from the repository root)
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"
#include "hash/blake3.h"

namespace b3 = atoma::blake3;

static int g_failures = 0;
static long g_checks = 0;
#define CHECK(cond, ...)                                    \
  do {                                                      \
    ++g_checks;                                             \
    if (!(cond)) {                                          \
      ++g_failures;                                         \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);                    \
      std::fprintf(stderr, "\n");                           \
      if (g_failures > 20) std::exit(1);                    \
    }                                                       \
  } while (0)

struct Case {
  size_t input_len;
  std::string hash, keyed, derive;
};

// The vector file is flat: a few top-level strings and an array of objects with fixed keys,
// so scanning for `"name": value` in order is enough.
static std::string str_after(const std::string& s, size_t& pos, const std::string& name) {
  size_t k = s.find("\"" + name + "\"", pos);
  if (k == std::string::npos) return {};
  size_t q1 = s.find('"', s.find(':', k) + 1);
  size_t q2 = s.find('"', q1 + 1);
  pos = q2 + 1;
  return s.substr(q1 + 1, q2 - q1 - 1);
}
static bool num_after(const std::string& s, size_t& pos, const std::string& name, size_t& v) {
  size_t k = s.find("\"" + name + "\"", pos);
  if (k == std::string::npos) return false;
  size_t c = s.find(':', k) + 1;
  v = std::strtoull(s.c_str() + c, nullptr, 10);
  pos = c;
  return true;
}

static std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i % 251);
  return v;
}

static std::string hex_out(const b3::Hasher& h, size_t n) {
  std::vector<uint8_t> out(n);
  h.finalize(out.data(), n);
  return b3::to_hex(out.data(), n);
}

static void feed_split(b3::Hasher& h, const uint8_t* p, size_t len, size_t split, std::mt19937* rng) {
  size_t off = 0;
  while (off < len) {
    size_t n = rng ? 1 + (*rng)() % 3000 : split;
    n = std::min(n, len - off);
    h.update(p + off, n);
    off += n;
  }
}

static void test_vectors(const std::string& path, atoma::Isa isa) {
  std::ifstream f(path);
  CHECK(f.good(), "cannot read %s", path.c_str());
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string s = ss.str();
  size_t pos = 0;
  const std::string key = str_after(s, pos, "key");
  pos = 0;
  const std::string context = str_after(s, pos, "context_string");
  CHECK(key.size() == 32, "key length %zu", key.size());
  pos = s.find("\"cases\"");
  std::vector<Case> cases;
  for (;;) {
    Case c;
    if (!num_after(s, pos, "input_len", c.input_len)) break;
    c.hash = str_after(s, pos, "hash");
    c.keyed = str_after(s, pos, "keyed_hash");
    c.derive = str_after(s, pos, "derive_key");
    cases.push_back(c);
  }
  CHECK(cases.size() == 35, "expected 35 cases, got %zu", cases.size());
  std::mt19937 rng(1234);
  const size_t splits[] = {1, 63, 64, 65, 1023, 1024, 1025, 0 /* random */};
  for (const Case& c : cases) {
    const std::vector<uint8_t> in = pattern(c.input_len);
    const size_t xlen = c.hash.size() / 2;
    for (int mode = 0; mode < 3; ++mode) {
      auto make = [&]() {
        if (mode == 0) return b3::Hasher();
        if (mode == 1) return b3::Hasher::keyed(reinterpret_cast<const uint8_t*>(key.data()));
        return b3::Hasher::derive_key(context);
      };
      const std::string& want = mode == 0 ? c.hash : mode == 1 ? c.keyed : c.derive;
      b3::Hasher h = make();
      h.update(in.data(), in.size());
      CHECK(hex_out(h, xlen) == want, "isa %s len %zu mode %d extended", atoma::isa_name(isa),
            c.input_len, mode);
      CHECK(hex_out(h, 32) == want.substr(0, 64), "isa %s len %zu mode %d 32-byte",
            atoma::isa_name(isa), c.input_len, mode);
      // Every prefix length of the extended output is a prefix of the full output.
      for (size_t n : {size_t(1), size_t(31), size_t(63), size_t(64), size_t(65), size_t(100)})
        CHECK(hex_out(h, n) == want.substr(0, 2 * n), "isa %s len %zu mode %d prefix %zu",
              atoma::isa_name(isa), c.input_len, mode, n);
      for (size_t split : splits) {
        b3::Hasher hs = make();
        feed_split(hs, in.data(), in.size(), split, split == 0 ? &rng : nullptr);
        CHECK(hex_out(hs, xlen) == want, "isa %s len %zu mode %d split %zu",
              atoma::isa_name(isa), c.input_len, mode, split);
      }
      if (mode == 0) {
        uint8_t out[32];
        b3::hash(in.data(), in.size(), out, true);
        CHECK(b3::to_hex(out, 32) == want.substr(0, 64), "one-shot len %zu", c.input_len);
      }
    }
  }
}

// Every length up to 9 chunks + 1 split into two updates at every chunk-relevant point: covers
// the lazy stack merging and root selection around chunk boundaries.
static void test_two_piece(atoma::Isa isa) {
  const std::vector<uint8_t> in = pattern(9 * 1024 + 1);
  for (size_t len = 0; len <= in.size(); len += (len % 1024 < 2 || len % 1024 > 1021) ? 1 : 509) {
    b3::Hasher ref;
    for (size_t i = 0; i < len; ++i) ref.update(&in[i], 1);  // the byte-at-a-time path
    const std::string want = hex_out(ref, 40);
    for (size_t cut = 0; cut <= len; cut += (cut % 1024 < 2 || cut % 1024 > 1021) ? 1 : 341) {
      b3::Hasher h;
      h.update(in.data(), cut);
      h.update(in.data() + cut, len - cut);
      CHECK(hex_out(h, 40) == want, "isa %s two-piece len %zu cut %zu", atoma::isa_name(isa), len,
            cut);
    }
  }
}

static std::string oneshot(const std::vector<uint8_t>& v, size_t len, bool parallel) {
  uint8_t out[32];
  b3::hash(v.data(), len, out, parallel);
  return b3::to_hex(out, 32);
}

static void test_large(atoma::Isa isa, const std::vector<uint8_t>& big,
                       std::vector<std::string>* reference, bool quick) {
  // Lengths around subtree, chunk and power-of-two boundaries, including 10 MiB and 64 MiB + 3.
  const size_t sizes[] = {(1u << 20) - 1, 1u << 20, (1u << 20) + 1, (2u << 20) + 1025,
                          (3u << 20) + 17, 10u << 20, (64u << 20) + 3};
  size_t k = 0;
  for (size_t len : sizes) {
    if (quick && len > (4u << 20)) continue;
    atoma::set_thread_count(1);
    const std::string serial = oneshot(big, len, false);
    if (reference->size() <= k) reference->push_back(serial);
    CHECK(serial == (*reference)[k], "isa %s len %zu differs from the first ISA",
          atoma::isa_name(isa), len);
    for (size_t t : {1, 2, 3}) {
      atoma::set_thread_count(t);
      CHECK(oneshot(big, len, true) == serial, "isa %s len %zu threads %zu", atoma::isa_name(isa),
            len, t);
    }
    b3::Hasher h;
    std::mt19937 rng{uint32_t(len)};
    feed_split(h, big.data(), len, 0, &rng);
    CHECK(hex_out(h, 32) == serial, "isa %s len %zu incremental", atoma::isa_name(isa), len);
    // Large and mixed update sizes: whole-chunk runs at every alignment of the chunk counter.
    const size_t pieces[] = {1, 1000, 1024, 2048, 4103, 65536, 66560, 1u << 20, (1u << 20) + 5};
    for (int trial = 0; trial < 3; ++trial) {
      b3::Hasher hm;
      size_t off = 0;
      while (off < len) {
        size_t n = trial == 2 ? 1 + rng() % (3u << 20) : pieces[rng() % 9];
        n = std::min(n, len - off);
        hm.update(big.data() + off, n);
        off += n;
      }
      CHECK(hex_out(hm, 32) == serial, "isa %s len %zu mixed updates %d", atoma::isa_name(isa),
            len, trial);
    }
    ++k;
  }
  atoma::set_thread_count(2);
}

static std::string run_capture(const std::string& cmd) {
  std::string r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) r += buf;
  pclose(p);
  return r;
}

static void test_files() {
  char dir[] = "/tmp/b3testXXXXXX";
  CHECK(mkdtemp(dir) != nullptr, "mkdtemp");
  const bool have_b3sum = std::system("command -v b3sum >/dev/null 2>&1") == 0;
  std::mt19937 rng(99);
  const size_t sizes[] = {0, 1, 1024, 1025, 123457, (1u << 20) + 5, (5u << 20) + 333};
  for (size_t n : sizes) {
    std::vector<uint8_t> data(n);
    for (auto& b : data) b = uint8_t(rng());
    const std::string path = std::string(dir) + "/f" + std::to_string(n);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (n) std::fwrite(data.data(), 1, n, f);
    std::fclose(f);
    uint8_t out[32];
    b3::hash_file(path, out);
    const std::string mine = b3::to_hex(out, 32);
    CHECK(mine == oneshot(data, n, false), "hash_file size %zu", n);
    // Through a pipe: no mmap possible, the read() path.
    const std::string piped =
        run_capture("cat " + path + " | /proc/" + std::to_string(getpid()) + "/exe --hash-stdin");
    CHECK(piped == mine + "\n", "pipe size %zu: got '%s'", n, piped.c_str());
    if (have_b3sum) {
      const std::string ref = run_capture("b3sum --no-names " + path);
      CHECK(ref == mine + "\n", "b3sum size %zu: %s vs %s", n, ref.c_str(), mine.c_str());
    }
    std::remove(path.c_str());
  }
  std::remove(dir);
  bool threw = false;
  try {
    uint8_t out[32];
    b3::hash_file("/nonexistent/blake3-file", out);
  } catch (const atoma::Error& e) {
    threw = e.code == "ERR_IO" && std::string(e.what()).find("/nonexistent/blake3-file") !=
                                      std::string::npos;
  }
  CHECK(threw, "missing file must throw ERR_IO naming the path");
  threw = false;
  try {
    uint8_t out[32];
    b3::hash_file("/tmp", out);
  } catch (const atoma::Error& e) {
    threw = e.code == "ERR_IO";
  }
  CHECK(threw, "directory must throw ERR_IO");
  if (!have_b3sum) std::printf("note: b3sum not installed, skipped the b3sum comparison\n");
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--hash-stdin") {
    uint8_t out[32];
    b3::hash_file("/dev/stdin", out);
    std::printf("%s\n", b3::to_hex(out, 32).c_str());
    return 0;
  }
  const std::string vectors = argc > 1 ? argv[1] : "test/fixtures/blake3-test-vectors.json";
  const bool quick = std::getenv("B3_QUICK") != nullptr;  // sanitizer runs: smaller inputs
  std::vector<uint8_t> big((64u << 20) + 3);
  std::mt19937_64 rng(7);
  for (size_t i = 0; i + 8 <= big.size(); i += 8) {
    const uint64_t r = rng();
    std::memcpy(&big[i], &r, 8);
  }
  std::vector<std::string> reference;
  for (atoma::Isa isa : atoma::available_isas()) {
    atoma::set_active_isa(isa);
    test_vectors(vectors, isa);
    test_two_piece(isa);
    test_large(isa, big, &reference, quick);
    std::printf("isa %s: %s\n", atoma::isa_name(isa), g_failures ? "FAILED" : "ok");
  }
  atoma::set_active_isa(atoma::best_isa());
  test_files();
  std::printf("%ld checks, %s\n", g_checks, g_failures ? "FAILED" : "all BLAKE3 tests passed");
  return g_failures ? 1 : 0;
}
