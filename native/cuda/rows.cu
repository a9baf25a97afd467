// Row kernels (sections 4 and 5) and elementwise ops. One warp per row: the spec's 32 lane
// partials are a warp's lanes, so a row's reductions never cross warps. Explicit _rn intrinsics
// keep every operation a single IEEE rounding whatever the compile flags.
#include "common.cuh"
#include "rows_kernel.cuh"

namespace atoma::cuda {
namespace {

using namespace row_kernels;

constexpr int EW_BLOCK = 256;
unsigned ew_grid(int64_t n) {
  const int64_t g = (n + EW_BLOCK - 1) / EW_BLOCK;
  return static_cast<unsigned>(g < 1 ? 1 : (g > 65536 ? 65536 : g));
}
unsigned row_grid(int64_t rows) {
  detail::require(rows / ROW_WARPS < 0x7FFFFFFF, "too many rows");
  return static_cast<unsigned>((rows + ROW_WARPS - 1) / ROW_WARPS);
}

void check_rows(int64_t rows, int64_t n, const char* what) {
  if (rows < 0 || n < 0) detail::shape_error(std::string(what) + ": negative size");
}

template <RowOp OP>
void row_reduce(const float* x, int64_t rows, int64_t n, float* out, Stream s, const char* what) {
  check_rows(rows, n, what);
  if (rows == 0) return;
  row_reduce_kernel<OP><<<row_grid(rows), ROW_WARPS * 32, 0, s>>>(x, rows, n, out);
  detail::check_launch(what);
}

}  // namespace

void row_sums(const float* x, int64_t rows, int64_t n, float* out, Stream s) {
  row_reduce<RowOp::Sum>(x, rows, n, out, s, "row_sums");
}
void row_sumsqs(const float* x, int64_t rows, int64_t n, float* out, Stream s) {
  row_reduce<RowOp::SumSq>(x, rows, n, out, s, "row_sumsqs");
}
void row_maxes(const float* x, int64_t rows, int64_t n, float* out, Stream s) {
  row_reduce<RowOp::Max>(x, rows, n, out, s, "row_maxes");
}

void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out, Stream s) {
  check_rows(rows, n, "argmax_rows");
  detail::require(n <= INT32_MAX, "argmax_rows: row too long for int32 indices");
  if (rows == 0) return;
  argmax_kernel<<<row_grid(rows), ROW_WARPS * 32, 0, s>>>(x, rows, n, out);
  detail::check_launch("argmax_rows");
}

void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps,
             Stream s) {
  check_rows(rows, n, "rmsnorm");
  if (rows == 0 || n == 0) return;
  rmsnorm_kernel<<<row_grid(rows), ROW_WARPS * 32, 0, s>>>(x, w, y, rows, n, eps);
  detail::check_launch("rmsnorm");
}

void softmax(const float* x, float* y, int64_t rows, int64_t n, Stream s) {
  check_rows(rows, n, "softmax");
  if (rows == 0 || n == 0) return;
  softmax_kernel<<<row_grid(rows), ROW_WARPS * 32, 0, s>>>(x, y, rows, n);
  detail::check_launch("softmax");
}

void add(const float* a, const float* b, float* y, int64_t n, Stream s) {
  check_rows(1, n, "add");
  if (n == 0) return;
  add_kernel<<<ew_grid(n), EW_BLOCK, 0, s>>>(a, b, y, n);
  detail::check_launch("add");
}

void mul(const float* a, const float* b, float* y, int64_t n, Stream s) {
  check_rows(1, n, "mul");
  if (n == 0) return;
  mul_kernel<<<ew_grid(n), EW_BLOCK, 0, s>>>(a, b, y, n);
  detail::check_launch("mul");
}

void add_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y, Stream s) {
  check_rows(rows, n, "add_rows");
  if (rows == 0 || n == 0) return;
  broadcast_rows_kernel<false><<<ew_grid(rows * n), EW_BLOCK, 0, s>>>(a, rows, n, row, y);
  detail::check_launch("add_rows");
}

void mul_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y, Stream s) {
  check_rows(rows, n, "mul_rows");
  if (rows == 0 || n == 0) return;
  broadcast_rows_kernel<true><<<ew_grid(rows * n), EW_BLOCK, 0, s>>>(a, rows, n, row, y);
  detail::check_launch("mul_rows");
}

void unary(Unary op, const float* x, float* y, int64_t n, Stream s) {
  check_rows(1, n, "unary");
  if (n == 0) return;
  const unsigned g = ew_grid(n);
  switch (op) {
    case Unary::Exp: unary_kernel<Unary::Exp><<<g, EW_BLOCK, 0, s>>>(x, y, n); break;
    case Unary::Log: unary_kernel<Unary::Log><<<g, EW_BLOCK, 0, s>>>(x, y, n); break;
    case Unary::Tanh: unary_kernel<Unary::Tanh><<<g, EW_BLOCK, 0, s>>>(x, y, n); break;
    case Unary::Sin: unary_kernel<Unary::Sin><<<g, EW_BLOCK, 0, s>>>(x, y, n); break;
    case Unary::Cos: unary_kernel<Unary::Cos><<<g, EW_BLOCK, 0, s>>>(x, y, n); break;
    case Unary::Silu: unary_kernel<Unary::Silu><<<g, EW_BLOCK, 0, s>>>(x, y, n); break;
    case Unary::Gelu: unary_kernel<Unary::Gelu><<<g, EW_BLOCK, 0, s>>>(x, y, n); break;
    default: detail::shape_error("unary: unknown op");
  }
  detail::check_launch("unary");
}

void embedding(const float* table, int64_t vocab, int64_t dim, const int32_t* ids, int64_t n,
               float* out, Stream s) {
  detail::require(vocab >= 0 && dim >= 0 && n >= 0, "embedding: negative size");
  if (n == 0 || dim == 0) return;
  detail::require(vocab > 0, "embedding: empty table");
  embedding_kernel<<<ew_grid(n * dim), EW_BLOCK, 0, s>>>(table, vocab, dim, ids, n, out);
  detail::check_launch("embedding");
}

}  // namespace atoma::cuda
