// Memory-mapped files as ArrayBuffers: model weights are read in place, never copied whole, and
// the pages are shared with the page cache. The mapping lives until the buffer is collected.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "args.h"
#include "bindings.h"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace atoma::addon {
namespace {

struct Mapping {
  void* addr;
  size_t len;
};

// mapFile(path) -> ArrayBuffer (read-only pages: writing through it faults)
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    std::string path = arg_string(info, 0, "path");
#if defined(__unix__) || defined(__APPLE__)
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_error(env, "ERR_IO", "cannot open '" + path + "': " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw_error(env, "ERR_IO", "'" + path + "' is not a regular file");
    }
    size_t len = static_cast<size_t>(st.st_size);
    if (len == 0) {
      ::close(fd);
      return Napi::ArrayBuffer::New(env, 0);
    }
    void* addr = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    ::close(fd);
    if (addr == MAP_FAILED) throw_error(env, "ERR_IO", "cannot map '" + path + "': " + std::strerror(map_errno));
    auto* m = new Mapping{addr, len};
    return Napi::ArrayBuffer::New(env, addr, len, [](Napi::Env, void*, Mapping* hint) {
      ::munmap(hint->addr, hint->len);
      delete hint;
    }, m);
#else
    throw_error(env, "ERR_IO", "memory-mapped files need a POSIX system");
#endif
  });
}

}  // namespace

void register_files(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFile", Napi::Function::New(env, MapFile));
}

}  // namespace atoma::addon
