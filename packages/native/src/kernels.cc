// miniglm native kernels: an N-API addon over OpenBLAS for the training step and decoding.
//
// Every function works in place on the caller's typed arrays (napi_get_typedarray_info gives
// their memory: no copies) and allocates nothing that outlives the call. Shapes are passed
// explicitly; the TypeScript side (packages/native/index.ts) checks them before calling.
//
// Determinism: results depend only on the inputs and on the BLAS thread count (OpenBLAS with
// two threads splits products differently from one); our own loops are single-threaded and
// sum in a fixed order. Pin the thread count with `threads(n)` for a run.
#include <node_api.h>
#include <cblas.h>
#if defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

// Threads for our loops and matrix products, set by `threads(n)`. BLAS itself always runs on
// one thread: our pool splits a product into chunks (gemm below), so that one mechanism
// shares the cores instead of two pools of spinning threads competing for them.
int gThreads = 1;

// A small pool of persistent workers for our own loops (starting threads per call costs tens
// of microseconds, as much as a whole matrix-vector product while decoding). A job is split
// into numbered chunks that whoever is free claims, the calling thread included: on a loaded
// machine a worker that is not scheduled in time only means the caller does more chunks itself.
// Workers spin a little for the next job, then sleep on a condition variable.
class Pool {
 public:
  // Runs job(i) for every i in [0, count); returns when all have run.
  void run(int count, const std::function<void(int)>& job) {
    ensure(count - 1);
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      count_ = count;
      done_.store(0);
      const unsigned long g = generation_.fetch_add(1) + 1;
      ticket_.store(static_cast<uint64_t>(g & 0xffffffffu) << 32);
    }
    cv_.notify_all();
    work(generation_.load(), job, count);
    while (done_.load() < count) std::this_thread::yield();
  }

 private:
  // Claims and runs chunks of generation `gen` until none is left. The ticket holds the
  // generation next to the next chunk number, so a worker that woke late for an earlier job
  // can never claim a chunk of the next one.
  void work(unsigned long gen, const std::function<void(int)>& job, int count) {
    for (;;) {
      uint64_t t = ticket_.load();
      int i;
      for (;;) {
        if ((t >> 32) != (gen & 0xffffffffu) || static_cast<int>(t & 0xffffffffu) >= count) return;
        if (ticket_.compare_exchange_weak(t, t + 1)) {
          i = static_cast<int>(t & 0xffffffffu);
          break;
        }
      }
      job(i);
      done_.fetch_add(1);
    }
  }
  void ensure(int workers) {
    while (static_cast<int>(threads_.size()) < workers) {
      // The generation now, read before run() starts the next one: the new worker joins that one.
      const unsigned long start = generation_.load();
      threads_.emplace_back([this, start] { loop(start); });
      threads_.back().detach();
    }
  }
  void loop(unsigned long seen) {
    for (;;) {
      int spins = 0;
      while (generation_.load() == seen && spins < 200000) spins++;
      if (generation_.load() == seen) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load() != seen; });
      }
      const std::function<void(int)>* job;
      int count;
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen = generation_.load();
        job = job_;
        count = count_;
      }
      work(seen, *job, count);
    }
  }
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void(int)>* job_ = nullptr;
  int count_ = 0;
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> done_{0};
  std::atomic<unsigned long> generation_{0};
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: its detached workers outlive static destruction
  return *p;
}

// Runs f(begin, end, t) over [0, n) split into one contiguous chunk per thread t (fewer when a
// chunk would be smaller than minChunk). The split depends only on n and the thread count, so
// per-chunk partial sums are combined in the same order on every run.
template <typename F>
void parallelFor(long n, long minChunk, F f) {
  long nt = std::min<long>(gThreads, n / std::max<long>(minChunk, 1));
  if (nt <= 1) {
    f(0L, n, 0);
    return;
  }
  const long chunk = (n + nt - 1) / nt;
  pool().run(static_cast<int>(nt), [&](int t) {
    const long b = t * chunk, e = std::min(n, (t + 1) * chunk);
    if (b < e) f(b, e, t);
  });
}

// C = alpha·op(A)·op(B) + beta·C (row-major, op(A) m×k, op(B) k×n) on our pool. A product big
// enough to share is cut into fixed blocks, one per thread, each one single-threaded BLAS call;
// whoever is free claims the next block. OpenBLAS's own threads split a product evenly and wait
// for each other: on a loaded machine (a test suite, a second worker) a descheduled thread
// stalled every product, measured at 5-10 GFLOP/s instead of 60-90; here the caller takes the
// block nobody has claimed yet. Each call packs the operand the blocks share again (B for
// blocks of rows, A for blocks of columns), so the cut goes along C's longer side, into blocks
// at least kMinBlock wide (two 32-row blocks per thread of a 128-token window rebuild spent
// more time packing B than multiplying; one block per thread measured best).
// The blocks depend only on the shape and the thread count, and every element of C is summed
// over all of k by one call, so results repeat exactly run after run.
constexpr double kShareWork = 1 << 20;  // multiply-adds below which one call is cheaper than sharing
constexpr long kMinBlock = 64;          // rows or columns of a block, at least

void gemm(bool ta, bool tb, long m, long n, long k, float alpha, const float* A, long lda, const float* B, long ldb,
          float beta, float* C, long ldc) {
  const CBLAS_TRANSPOSE opA = ta ? CblasTrans : CblasNoTrans, opB = tb ? CblasTrans : CblasNoTrans;
  const long want = gThreads;
  const bool share = gThreads > 1 && static_cast<double>(m) * n * k >= kShareWork;
  const bool byRows = m >= n;
  const long extent = byRows ? m : n;
  const long blocks = share ? std::min(want, extent / kMinBlock) : 1;
  if (blocks <= 1) {
    cblas_sgemm(CblasRowMajor, opA, opB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Block edges on multiples of 16 (the width of the BLAS kernels' tiles).
  const long size = ((extent + blocks - 1) / blocks + 15) / 16 * 16;
  pool().run(static_cast<int>((extent + size - 1) / size), [&](int i) {
    const long b = i * size, e = std::min(extent, b + size);
    if (byRows)
      cblas_sgemm(CblasRowMajor, opA, opB, e - b, n, k, alpha, ta ? A + b : A + b * lda, lda, B, ldb, beta, C + b * ldc,
                  ldc);
    else
      cblas_sgemm(CblasRowMajor, opA, opB, m, e - b, k, alpha, A, lda, tb ? B + b * ldb : B + b, ldb, beta, C + b,
                  ldc);
  });
}

// ---------------------------------------------------------------------------------------------
// Argument helpers. A failed check throws a JS TypeError and returns nullptr / false.

struct Args {
  napi_env env;
  size_t argc = 24;
  napi_value argv[24];
  bool ok = true;

  Args(napi_env e, napi_callback_info info, size_t want) : env(e) {
    napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
    if (argc < want) fail("expected " + std::to_string(want) + " arguments, got " + std::to_string(argc));
  }

  void fail(const std::string& what) {
    if (ok) napi_throw_type_error(env, nullptr, ("miniglm native: " + what).c_str());
    ok = false;
  }

  template <typename T>
  T* array(size_t i, napi_typedarray_type want, size_t* length = nullptr, bool nullable = false) {
    if (!ok) return nullptr;
    napi_valuetype vt;
    napi_typeof(env, argv[i], &vt);
    if (nullable && (vt == napi_null || vt == napi_undefined)) {
      if (length) *length = 0;
      return nullptr;
    }
    bool is = false;
    napi_is_typedarray(env, argv[i], &is);
    if (!is) {
      fail("argument " + std::to_string(i) + " must be a typed array");
      return nullptr;
    }
    napi_typedarray_type type;
    size_t n;
    void* data;
    napi_get_typedarray_info(env, argv[i], &type, &n, &data, nullptr, nullptr);
    if (type != want) {
      fail("argument " + std::to_string(i) + " has the wrong element type");
      return nullptr;
    }
    if (length) *length = n;
    return static_cast<T*>(data);
  }
  float* f32(size_t i, size_t* n = nullptr) { return array<float>(i, napi_float32_array, n); }
  float* f32OrNull(size_t i, size_t* n = nullptr) { return array<float>(i, napi_float32_array, n, true); }
  int32_t* i32(size_t i, size_t* n = nullptr) { return array<int32_t>(i, napi_int32_array, n); }
  uint8_t* u8(size_t i, size_t* n = nullptr) { return array<uint8_t>(i, napi_uint8_array, n); }

  double num(size_t i) {
    double v = 0;
    if (ok && napi_get_value_double(env, argv[i], &v) != napi_ok) fail("argument " + std::to_string(i) + " must be a number");
    return v;
  }
  long idx(size_t i) { return static_cast<long>(num(i)); }
  bool flag(size_t i) {
    bool v = false;
    if (ok && napi_get_value_bool(env, argv[i], &v) != napi_ok) fail("argument " + std::to_string(i) + " must be a boolean");
    return v;
  }
  // Reads element j of a JS array argument i (for lists of typed arrays).
  napi_value element(size_t i, uint32_t j) {
    napi_value v = nullptr;
    if (ok) napi_get_element(env, argv[i], j, &v);
    return v;
  }
  uint32_t length(size_t i) {
    uint32_t n = 0;
    if (ok && napi_get_array_length(env, argv[i], &n) != napi_ok) fail("argument " + std::to_string(i) + " must be an array");
    return n;
  }
};

float* f32Of(Args& a, napi_value v, size_t* n) {
  napi_typedarray_type type;
  void* data = nullptr;
  bool is = false;
  napi_is_typedarray(a.env, v, &is);
  if (!is) {
    a.fail("list element must be a Float32Array");
    return nullptr;
  }
  napi_get_typedarray_info(a.env, v, &type, n, &data, nullptr, nullptr);
  if (type != napi_float32_array) {
    a.fail("list element must be a Float32Array");
    return nullptr;
  }
  return static_cast<float*>(data);
}

napi_value undefinedValue(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value numberValue(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// exp for float32 that the compiler can vectorise: 2^n · e^r with |r| ≤ ln2/2 and e^r from its
// Taylor series to degree 7 (truncation error < 1e-8, below float32's resolution).
inline float fastExp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  // ln2 in two parts so that n·ln2 is exact for the first part.
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// ---------------------------------------------------------------------------------------------
// BLAS

napi_value Threads(napi_env env, napi_callback_info info) {
  Args a(env, info, 0);
  if (a.argc >= 1) {
    long n = a.idx(0);
    if (!a.ok) return nullptr;
    if (n < 1) {
      a.fail("thread count must be at least 1");
      return nullptr;
    }
    gThreads = static_cast<int>(n);
  }
  return numberValue(env, gThreads);
}

napi_value Config(napi_env env, napi_callback_info) {
  std::string s = std::string(openblas_get_config()) + "; core " + openblas_get_corename() + "; " +
                  std::to_string(openblas_get_num_procs()) + " processors";
  napi_value out;
  napi_create_string_utf8(env, s.c_str(), s.size(), &out);
  return out;
}

// sgemm(transA, transB, M, N, K, alpha, A, offA, lda, strideA, B, offB, ldb, strideB,
//       beta, C, offC, ldc, strideC, batch): C_i = alpha·op(A_i)·op(B_i) + beta·C_i for
// i < batch, with A_i at A + offA + i·strideA (a stride of 0 broadcasts one matrix), row-major.
napi_value Sgemm(napi_env env, napi_callback_info info) {
  Args a(env, info, 20);
  bool ta = a.flag(0), tb = a.flag(1);
  long m = a.idx(2), n = a.idx(3), k = a.idx(4);
  float alpha = static_cast<float>(a.num(5));
  size_t na, nb, nc;
  float* A = a.f32(6, &na);
  long offA = a.idx(7), lda = a.idx(8), sA = a.idx(9);
  float* B = a.f32(10, &nb);
  long offB = a.idx(11), ldb = a.idx(12), sB = a.idx(13);
  float beta = static_cast<float>(a.num(14));
  float* C = a.f32(15, &nc);
  long offC = a.idx(16), ldc = a.idx(17), sC = a.idx(18), batch = a.idx(19);
  if (!a.ok) return nullptr;
  // Bounds: the last element each operand's last matrix touches must lie inside its array.
  auto last = [](long off, long stride, long batches, long rows, long cols, long ld) {
    return off + stride * (batches - 1) + (rows - 1) * ld + cols;
  };
  if (m <= 0 || n <= 0 || batch <= 0) return undefinedValue(env);
  long aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n;
  if (k > 0 && (last(offA, sA, batch, aRows, aCols, lda) > static_cast<long>(na) ||
                last(offB, sB, batch, bRows, bCols, ldb) > static_cast<long>(nb))) {
    a.fail("sgemm operand out of bounds");
    return nullptr;
  }
  if (last(offC, sC, batch, m, n, ldc) > static_cast<long>(nc)) {
    a.fail("sgemm output out of bounds");
    return nullptr;
  }
  for (long i = 0; i < batch; i++)
    gemm(ta, tb, m, n, k, alpha, A + offA + i * sA, lda, B + offB + i * sB, ldb, beta, C + offC + i * sC, ldc);
  return undefinedValue(env);
}

// ---------------------------------------------------------------------------------------------
// LayerNorm over the last axis (biased variance, as tf.moments).

void layerNormRows(const float* x, const float* g, const float* b, float* y, float* mean, float* rstd, long rows,
                   long cols, float eps) {
  for (long r = 0; r < rows; r++) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    double s = 0;
    for (long c = 0; c < cols; c++) s += xr[c];
    const float mu = static_cast<float>(s / cols);
    double ss = 0;
    for (long c = 0; c < cols; c++) {
      const float d = xr[c] - mu;
      ss += static_cast<double>(d) * d;
    }
    const float rs = static_cast<float>(1.0 / std::sqrt(ss / cols + eps));
    if (mean) mean[r] = mu;
    if (rstd) rstd[r] = rs;
    if (b)
      for (long c = 0; c < cols; c++) yr[c] = (xr[c] - mu) * rs * g[c] + b[c];
    else
      for (long c = 0; c < cols; c++) yr[c] = (xr[c] - mu) * rs * g[c];
  }
}

// layerNormFwd(x, gamma, beta|null, y, mean, rstd, rows, cols, eps)
napi_value LayerNormFwd(napi_env env, napi_callback_info info) {
  Args a(env, info, 9);
  size_t nx, ng, nb, ny, nm, nr;
  float* x = a.f32(0, &nx);
  float* g = a.f32(1, &ng);
  float* b = a.f32OrNull(2, &nb);
  float* y = a.f32(3, &ny);
  float* mean = a.f32(4, &nm);
  float* rstd = a.f32(5, &nr);
  long rows = a.idx(6), cols = a.idx(7);
  float eps = static_cast<float>(a.num(8));
  if (!a.ok) return nullptr;
  size_t n = static_cast<size_t>(rows * cols);
  if (nx < n || ny < n || ng < static_cast<size_t>(cols) || (b && nb < static_cast<size_t>(cols)) ||
      nm < static_cast<size_t>(rows) || nr < static_cast<size_t>(rows)) {
    a.fail("layerNormFwd: array too small for the shape");
    return nullptr;
  }
  parallelFor(rows, std::max<long>(1, (1 << 15) / std::max<long>(cols, 1)), [&](long r0, long r1, int) {
    layerNormRows(x + r0 * cols, g, b, y + r0 * cols, mean + r0, rstd + r0, r1 - r0, cols, eps);
  });
  return undefinedValue(env);
}

// layerNormBwd(dy, x, gamma, mean, rstd, dx, dgamma, dbeta|null, rows, cols)
napi_value LayerNormBwd(napi_env env, napi_callback_info info) {
  Args a(env, info, 10);
  size_t ndy, nx, ng, nm, nr, ndx, ndg, ndb;
  float* dy = a.f32(0, &ndy);
  float* x = a.f32(1, &nx);
  float* g = a.f32(2, &ng);
  float* mean = a.f32(3, &nm);
  float* rstd = a.f32(4, &nr);
  float* dx = a.f32(5, &ndx);
  float* dg = a.f32(6, &ndg);
  float* db = a.f32OrNull(7, &ndb);
  long rows = a.idx(8), cols = a.idx(9);
  if (!a.ok) return nullptr;
  size_t n = static_cast<size_t>(rows * cols), c = static_cast<size_t>(cols), r = static_cast<size_t>(rows);
  if (ndy < n || nx < n || ndx < n || ng < c || ndg < c || (db && ndb < c) || nm < r || nr < r) {
    a.fail("layerNormBwd: array too small for the shape");
    return nullptr;
  }
  // Per-thread partial sums of dgamma and dbeta, added in thread order afterwards.
  const long chunks = std::max(1, gThreads);
  std::vector<double> dgAcc(c * chunks, 0.0), dbAcc(c * chunks, 0.0);
  parallelFor(rows, std::max<long>(1, (1 << 15) / std::max<long>(cols, 1)), [&](long r0, long r1, int t) {
    double* dgT = dgAcc.data() + t * c;
    double* dbT = dbAcc.data() + t * c;
    std::vector<float> xhat(c), dxhat(c);
    for (long i = r0; i < r1; i++) {
      const float* dyr = dy + i * cols;
      const float* xr = x + i * cols;
      const float mu = mean[i], rs = rstd[i];
      double sumD = 0, sumDX = 0;
      for (long j = 0; j < cols; j++) {
        xhat[j] = (xr[j] - mu) * rs;
        dxhat[j] = dyr[j] * g[j];
        sumD += dxhat[j];
        sumDX += static_cast<double>(dxhat[j]) * xhat[j];
        dgT[j] += static_cast<double>(dyr[j]) * xhat[j];
        dbT[j] += dyr[j];
      }
      const float mD = static_cast<float>(sumD / cols), mDX = static_cast<float>(sumDX / cols);
      float* dxr = dx + i * cols;
      for (long j = 0; j < cols; j++) dxr[j] = rs * (dxhat[j] - mD - xhat[j] * mDX);
    }
  });
  for (size_t j = 0; j < c; j++) {
    double sg = 0, sb = 0;
    for (long t = 0; t < chunks; t++) {
      sg += dgAcc[t * c + j];
      sb += dbAcc[t * c + j];
    }
    dg[j] = static_cast<float>(sg);
    if (db) db[j] = static_cast<float>(sb);
  }
  return undefinedValue(env);
}

// ---------------------------------------------------------------------------------------------
// GELU, GPT-2's tanh form, written as x·sigmoid(2z) with z = √(2/π)(x + 0.044715x³).

constexpr float kGeluA = 0.7978845608028654f;  // √(2/π)
constexpr float kGeluB = 0.044715f;

void geluRows(const float* __restrict x, float* __restrict y, long n) {
  for (long i = 0; i < n; i++) {
    const float v = x[i];
    const float z = kGeluA * (v + kGeluB * v * v * v);
    y[i] = v / (1.0f + fastExp(-2.0f * z));
  }
}

void geluGradRows(const float* __restrict x, const float* __restrict dy, float* __restrict dx, long n) {
  for (long i = 0; i < n; i++) {
    const float v = x[i];
    const float z = kGeluA * (v + kGeluB * v * v * v);
    const float s = 1.0f / (1.0f + fastExp(-2.0f * z));
    const float dz = kGeluA * (1.0f + 3.0f * kGeluB * v * v);
    dx[i] = dy[i] * (s + v * s * (1.0f - s) * 2.0f * dz);
  }
}

// geluFwd(x, y)
napi_value GeluFwd(napi_env env, napi_callback_info info) {
  Args a(env, info, 2);
  size_t nx, ny;
  float* x = a.f32(0, &nx);
  float* y = a.f32(1, &ny);
  if (!a.ok) return nullptr;
  if (ny < nx) {
    a.fail("geluFwd: output smaller than input");
    return nullptr;
  }
  parallelFor(static_cast<long>(nx), 1 << 16, [&](long b, long e, int) { geluRows(x + b, y + b, e - b); });
  return undefinedValue(env);
}

// geluBwd(x, dy, dx)
napi_value GeluBwd(napi_env env, napi_callback_info info) {
  Args a(env, info, 3);
  size_t nx, ndy, ndx;
  float* x = a.f32(0, &nx);
  float* dy = a.f32(1, &ndy);
  float* dx = a.f32(2, &ndx);
  if (!a.ok) return nullptr;
  if (ndy < nx || ndx < nx) {
    a.fail("geluBwd: arrays of different lengths");
    return nullptr;
  }
  parallelFor(static_cast<long>(nx), 1 << 16,
              [&](long b, long e, int) { geluGradRows(x + b, dy + b, dx + b, e - b); });
  return undefinedValue(env);
}

// ---------------------------------------------------------------------------------------------
// Causal multi-head attention over q [B, T, C], k and v [B, Tk, C] (heads side by side in C):
// query i sits at position Tk − T + i and sees keys 0 … Tk − T + i. Scores go through a
// scaled, causally masked softmax; p [B, H, T, Tk] keeps the probabilities for the backward.
// q, k and v (and their gradients) are read with a row stride `ld` ≥ C: C for separate
// tensors, 3C when they are the three column blocks of one projection [B, T, 3C] (one matrix
// product for all three instead of three narrow ones, which BLAS runs far below its peak).

void causalSoftmaxRows(float* s, long t, long tk, float scale) {
  const long off = tk - t;
  for (long i = 0; i < t; i++) {
    float* row = s + i * tk;
    const long valid = off + i + 1;
    float mx = -INFINITY;
    for (long j = 0; j < valid; j++) mx = row[j] * scale > mx ? row[j] * scale : mx;
    float sum = 0;
    for (long j = 0; j < valid; j++) {
      row[j] = fastExp(row[j] * scale - mx);
      sum += row[j];
    }
    const float inv = 1.0f / sum;
    for (long j = 0; j < valid; j++) row[j] *= inv;
    for (long j = valid; j < tk; j++) row[j] = 0.0f;
  }
}

void attentionForward(const float* q, const float* k, const float* v, float* y, float* p, long B, long T, long Tk,
                      long H, long hs, float scale, long ld) {
  const long C = H * hs;
  parallelFor(B * H, 1, [&](long i0, long i1, int) {
    for (long i = i0; i < i1; i++) {
      const long b = i / H, h = i % H;
      float* P = p + (b * H + h) * T * Tk;
      const float* Q = q + b * T * ld + h * hs;
      const float* K = k + b * Tk * ld + h * hs;
      const float* V = v + b * Tk * ld + h * hs;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, Tk, hs, 1.0f, Q, ld, K, ld, 0.0f, P, Tk);
      causalSoftmaxRows(P, T, Tk, scale);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, Tk, 1.0f, P, Tk, V, ld, 0.0f,
                  y + b * T * C + h * hs, C);
    }
  });
}

// The elements `rows` rows of `cols` values take at a row stride of `ld`.
size_t stridedSize(long rows, long cols, long ld) { return rows > 0 ? static_cast<size_t>((rows - 1) * ld + cols) : 0; }

// attnFwd(q, k, v, y, p, B, T, Tk, H, hs, scale, ld)
napi_value AttnFwd(napi_env env, napi_callback_info info) {
  Args a(env, info, 12);
  size_t nq, nk, nv, ny, np;
  float* q = a.f32(0, &nq);
  float* k = a.f32(1, &nk);
  float* v = a.f32(2, &nv);
  float* y = a.f32(3, &ny);
  float* p = a.f32(4, &np);
  long B = a.idx(5), T = a.idx(6), Tk = a.idx(7), H = a.idx(8), hs = a.idx(9);
  float scale = static_cast<float>(a.num(10));
  long ld = a.idx(11);
  if (!a.ok) return nullptr;
  const long C = H * hs;
  const size_t qs = stridedSize(B * T, C, ld), ks = stridedSize(B * Tk, C, ld);
  if (Tk < T || ld < C || nq < qs || nk < ks || nv < ks || ny < static_cast<size_t>(B * T * C) ||
      np < static_cast<size_t>(B * H * T * Tk)) {
    a.fail("attnFwd: array too small for the shape");
    return nullptr;
  }
  attentionForward(q, k, v, y, p, B, T, Tk, H, hs, scale, ld);
  return undefinedValue(env);
}

// attnBwd(q, k, v, p, dy, dq, dk, dv, B, T, Tk, H, hs, scale, ld): dy [B, T, C]; q … dv at stride ld.
napi_value AttnBwd(napi_env env, napi_callback_info info) {
  Args a(env, info, 15);
  size_t nq, nk, nv, np, ndy, ndq, ndk, ndv;
  float* q = a.f32(0, &nq);
  float* k = a.f32(1, &nk);
  float* v = a.f32(2, &nv);
  float* p = a.f32(3, &np);
  float* dy = a.f32(4, &ndy);
  float* dq = a.f32(5, &ndq);
  float* dk = a.f32(6, &ndk);
  float* dv = a.f32(7, &ndv);
  long B = a.idx(8), T = a.idx(9), Tk = a.idx(10), H = a.idx(11), hs = a.idx(12);
  float scale = static_cast<float>(a.num(13));
  long ld = a.idx(14);
  if (!a.ok) return nullptr;
  const long C = H * hs;
  const size_t qs = stridedSize(B * T, C, ld), ks = stridedSize(B * Tk, C, ld);
  if (Tk < T || ld < C || nq < qs || ndq < qs || ndy < static_cast<size_t>(B * T * C) || nk < ks || nv < ks ||
      ndk < ks || ndv < ks || np < static_cast<size_t>(B * H * T * Tk)) {
    a.fail("attnBwd: array too small for the shape");
    return nullptr;
  }
  parallelFor(B * H, 1, [&](long i0, long i1, int) {
    std::vector<float> dP(static_cast<size_t>(T * Tk));
    for (long bh = i0; bh < i1; bh++) {
      const long b = bh / H, h = bh % H;
      const float* P = p + (b * H + h) * T * Tk;
      const long o = h * hs;
      const float* Q = q + b * T * ld + o;
      const float* K = k + b * Tk * ld + o;
      const float* V = v + b * Tk * ld + o;
      const float* dY = dy + b * T * C + o;
      // dP = dY·Vᵀ, dV = Pᵀ·dY
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, Tk, hs, 1.0f, dY, C, V, ld, 0.0f, dP.data(), Tk);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hs, T, 1.0f, P, Tk, dY, C, 0.0f, dv + b * Tk * ld + o,
                  ld);
      // Softmax backward, then the scale: dS = scale · P ⊙ (dP − Σ_j P·dP).
      for (long i = 0; i < T; i++) {
        const float* pr = P + i * Tk;
        float* dr = dP.data() + i * Tk;
        const long valid = Tk - T + i + 1;
        float dot = 0;
        for (long j = 0; j < valid; j++) dot += pr[j] * dr[j];
        for (long j = 0; j < valid; j++) dr[j] = scale * pr[j] * (dr[j] - dot);
        for (long j = valid; j < Tk; j++) dr[j] = 0.0f;
      }
      // dQ = dS·K, dK = dSᵀ·Q
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, Tk, 1.0f, dP.data(), Tk, K, ld, 0.0f,
                  dq + b * T * ld + o, ld);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hs, T, 1.0f, dP.data(), Tk, Q, ld, 0.0f,
                  dk + b * Tk * ld + o, ld);
    }
  });
  return undefinedValue(env);
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy straight from logits [rows, V], each row weighted (the SFT mask):
// loss = Σ w·(lse − z[target]) / max(Σ w, 1e-9). With `grad` given, also writes
// ∂loss/∂logits = (softmax − onehot)·w / max(Σ w, 1e-9) in the same pass.

// crossEntropy(logits, targets, weights, rows, V, grad|null) → loss
napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  size_t nz, nt, nw, ng;
  float* z = a.f32(0, &nz);
  int32_t* t = a.i32(1, &nt);
  float* w = a.f32(2, &nw);
  long rows = a.idx(3), V = a.idx(4);
  float* grad = a.f32OrNull(5, &ng);
  if (!a.ok) return nullptr;
  size_t n = static_cast<size_t>(rows * V);
  if (nz < n || nt < static_cast<size_t>(rows) || nw < static_cast<size_t>(rows) || (grad && ng < n)) {
    a.fail("crossEntropy: array too small for the shape");
    return nullptr;
  }
  for (long r = 0; r < rows; r++)
    if (t[r] < 0 || t[r] >= V) {
      a.fail("crossEntropy: target " + std::to_string(t[r]) + " outside the vocabulary of " + std::to_string(V));
      return nullptr;
    }
  double total = 0;
  for (long r = 0; r < rows; r++) total += w[r];
  const double denom = total > 1e-9 ? total : 1e-9;
  std::vector<double> rowLoss(static_cast<size_t>(rows), 0.0);
  parallelFor(rows, std::max<long>(1, (1 << 16) / std::max<long>(V, 1)), [&](long r0, long r1, int) {
    for (long r = r0; r < r1; r++) {
      const float* zr = z + r * V;
      float* gr = grad ? grad + r * V : nullptr;
      if (w[r] == 0.0f) {
        if (gr) std::memset(gr, 0, sizeof(float) * static_cast<size_t>(V));
        continue;
      }
      float mx = -INFINITY;
      for (long j = 0; j < V; j++) mx = zr[j] > mx ? zr[j] : mx;
      float sum = 0;
      if (gr) {
        for (long j = 0; j < V; j++) {
          gr[j] = fastExp(zr[j] - mx);
          sum += gr[j];
        }
        const float s = static_cast<float>(w[r] / denom) / sum;
        for (long j = 0; j < V; j++) gr[j] *= s;
        gr[t[r]] -= static_cast<float>(w[r] / denom);
      } else {
        for (long j = 0; j < V; j++) sum += fastExp(zr[j] - mx);
      }
      rowLoss[r] = w[r] * (static_cast<double>(mx) + std::log(static_cast<double>(sum)) - zr[t[r]]);
    }
  });
  double loss = 0;
  for (long r = 0; r < rows; r++) loss += rowLoss[r];
  return numberValue(env, loss / denom);
}

// ---------------------------------------------------------------------------------------------
// Element-wise and reductions.

// binary(op, a, b, out, n, period): out[i] = a[i] op b[i mod period]; op 0 add, 1 sub, 2 mul, 3 div.
// period = n for equal shapes, 1 for a scalar, the last axis for a row broadcast (bias add).
napi_value Binary(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  long op = a.idx(0);
  size_t na, nb, no;
  float* x = a.f32(1, &na);
  float* y = a.f32(2, &nb);
  float* out = a.f32(3, &no);
  long n = a.idx(4), period = a.idx(5);
  if (!a.ok) return nullptr;
  if (period < 1 || n % period != 0 || na < static_cast<size_t>(n) || no < static_cast<size_t>(n) ||
      nb < static_cast<size_t>(period)) {
    a.fail("binary: bad shapes");
    return nullptr;
  }
  auto apply = [&](auto f) {
    if (period == 1) {
      const float c = y[0];
      parallelFor(n, 1 << 18, [&](long b, long e, int) {
        for (long i = b; i < e; i++) out[i] = f(x[i], c);
      });
    } else if (period == n) {
      parallelFor(n, 1 << 18, [&](long b, long e, int) {
        for (long i = b; i < e; i++) out[i] = f(x[i], y[i]);
      });
    } else {
      parallelFor(n / period, std::max<long>(1, (1 << 18) / period), [&](long b, long e, int) {
        for (long r = b; r < e; r++) {
          const float* xr = x + r * period;
          float* o = out + r * period;
          for (long i = 0; i < period; i++) o[i] = f(xr[i], y[i]);
        }
      });
    }
  };
  switch (op) {
    case 0:
      apply([](float u, float v) { return u + v; });
      break;
    case 1:
      apply([](float u, float v) { return u - v; });
      break;
    case 2:
      apply([](float u, float v) { return u * v; });
      break;
    default:
      apply([](float u, float v) { return u / v; });
  }
  return undefinedValue(env);
}

// colSum(x, out, rows, cols): out[c] = Σ_r x[r, c] (the gradient of a bias).
napi_value ColSum(napi_env env, napi_callback_info info) {
  Args a(env, info, 4);
  size_t nx, no;
  float* x = a.f32(0, &nx);
  float* out = a.f32(1, &no);
  long rows = a.idx(2), cols = a.idx(3);
  if (!a.ok) return nullptr;
  if (nx < static_cast<size_t>(rows * cols) || no < static_cast<size_t>(cols)) {
    a.fail("colSum: array too small for the shape");
    return nullptr;
  }
  // Each thread owns a band of columns and sums it over all rows in row order: the result
  // does not depend on the thread count.
  std::vector<double> acc(static_cast<size_t>(cols), 0.0);
  parallelFor(cols, std::max<long>(16, (1 << 16) / std::max<long>(rows, 1)), [&](long c0, long c1, int) {
    for (long r = 0; r < rows; r++) {
      const float* xr = x + r * cols;
      for (long c = c0; c < c1; c++) acc[c] += xr[c];
    }
  });
  for (long c = 0; c < cols; c++) out[c] = static_cast<float>(acc[c]);
  return undefinedValue(env);
}

// ---------------------------------------------------------------------------------------------
// Token + position embedding: out[b, t] = wte[idx[b, t]] + wpe[offset + t].

// embedFwd(idx, wte, wpe, out, B, T, C, offset)
napi_value EmbedFwd(napi_env env, napi_callback_info info) {
  Args a(env, info, 8);
  size_t ni, nte, npe, no;
  int32_t* idx = a.i32(0, &ni);
  float* wte = a.f32(1, &nte);
  float* wpe = a.f32(2, &npe);
  float* out = a.f32(3, &no);
  long B = a.idx(4), T = a.idx(5), C = a.idx(6), offset = a.idx(7);
  if (!a.ok) return nullptr;
  const long V = static_cast<long>(nte) / C;
  if (ni < static_cast<size_t>(B * T) || no < static_cast<size_t>(B * T * C) ||
      npe < static_cast<size_t>((offset + T) * C)) {
    a.fail("embedFwd: array too small for the shape");
    return nullptr;
  }
  for (long b = 0; b < B; b++)
    for (long t = 0; t < T; t++) {
      const int32_t id = idx[b * T + t];
      if (id < 0 || id >= V) {
        a.fail("embedFwd: token id " + std::to_string(id) + " outside the vocabulary of " + std::to_string(V));
        return nullptr;
      }
      const float* e = wte + static_cast<long>(id) * C;
      const float* pe = wpe + (offset + t) * C;
      float* o = out + (b * T + t) * C;
      for (long c = 0; c < C; c++) o[c] = e[c] + pe[c];
    }
  return undefinedValue(env);
}

// embedBwd(idx, dy, dwte, dwpe, B, T, C, offset): dwte and dwpe are overwritten (zeroed first).
napi_value EmbedBwd(napi_env env, napi_callback_info info) {
  Args a(env, info, 8);
  size_t ni, ndy, nte, npe;
  int32_t* idx = a.i32(0, &ni);
  float* dy = a.f32(1, &ndy);
  float* dwte = a.f32(2, &nte);
  float* dwpe = a.f32(3, &npe);
  long B = a.idx(4), T = a.idx(5), C = a.idx(6), offset = a.idx(7);
  if (!a.ok) return nullptr;
  const long V = static_cast<long>(nte) / C;
  if (ni < static_cast<size_t>(B * T) || ndy < static_cast<size_t>(B * T * C) ||
      npe < static_cast<size_t>((offset + T) * C)) {
    a.fail("embedBwd: array too small for the shape");
    return nullptr;
  }
  std::memset(dwte, 0, nte * sizeof(float));
  std::memset(dwpe, 0, npe * sizeof(float));
  for (long b = 0; b < B; b++)
    for (long t = 0; t < T; t++) {
      const int32_t id = idx[b * T + t];
      if (id < 0 || id >= V) {
        a.fail("embedBwd: token id outside the vocabulary");
        return nullptr;
      }
      const float* g = dy + (b * T + t) * C;
      float* e = dwte + static_cast<long>(id) * C;
      float* pe = dwpe + (offset + t) * C;
      for (long c = 0; c < C; c++) {
        e[c] += g[c];
        pe[c] += g[c];
      }
    }
  return undefinedValue(env);
}

// ---------------------------------------------------------------------------------------------
// Optimizer: Σ g² over a list of arrays, and AdamW over all parameters in one call.

// sumSquares([g...]) → Σ over all elements of g², summed in doubles in list order.
napi_value SumSquares(napi_env env, napi_callback_info info) {
  Args a(env, info, 1);
  uint32_t count = a.length(0);
  double total = 0;
  for (uint32_t i = 0; i < count && a.ok; i++) {
    size_t n = 0;
    float* g = f32Of(a, a.element(0, i), &n);
    if (!g) break;
    // Fixed 64k-element blocks summed in order: the same total for any thread count.
    const long blocks = (static_cast<long>(n) + 65535) / 65536;
    std::vector<double> part(static_cast<size_t>(blocks), 0.0);
    parallelFor(blocks, 4, [&](long b0, long b1, int) {
      for (long b = b0; b < b1; b++) {
        const size_t e = std::min(n, static_cast<size_t>(b + 1) * 65536);
        double s = 0;
        for (size_t j = static_cast<size_t>(b) * 65536; j < e; j++) s += static_cast<double>(g[j]) * g[j];
        part[b] = s;
      }
    });
    for (double s : part) total += s;
  }
  if (!a.ok) return nullptr;
  return numberValue(env, total);
}

// adamw([p...], [g...], [m...], [v...], decay: Uint8Array, lr, beta1, beta2, eps, weightDecay,
//       gradScale): torch.optim.AdamW's update in place on p, m and v, with g·gradScale as the
// gradient (the clipping factor, applied without materialising clipped gradients).
napi_value AdamW(napi_env env, napi_callback_info info) {
  Args a(env, info, 13);
  uint32_t count = a.length(0);
  size_t nd;
  uint8_t* decay = a.u8(4, &nd);
  const float lr = static_cast<float>(a.num(5)), b1 = static_cast<float>(a.num(6)),
              b2 = static_cast<float>(a.num(7)), eps = static_cast<float>(a.num(8)),
              wd = static_cast<float>(a.num(9)), c1 = static_cast<float>(a.num(10)),
              c2 = static_cast<float>(a.num(11)), scale = static_cast<float>(a.num(12));
  if (!a.ok) return nullptr;
  if (a.length(1) != count || a.length(2) != count || a.length(3) != count || nd < count) {
    a.fail("adamw: lists of different lengths");
    return nullptr;
  }
  for (uint32_t i = 0; i < count; i++) {
    size_t np, ng, nm, nv;
    float* p = f32Of(a, a.element(0, i), &np);
    float* g = f32Of(a, a.element(1, i), &ng);
    float* m = f32Of(a, a.element(2, i), &nm);
    float* v = f32Of(a, a.element(3, i), &nv);
    if (!a.ok) return nullptr;
    if (ng != np || nm != np || nv != np) {
      a.fail("adamw: parameter " + std::to_string(i) + " and its gradient or moments differ in size");
      return nullptr;
    }
    const float keep = decay[i] ? 1.0f - lr * wd : 1.0f;
    parallelFor(static_cast<long>(np), 1 << 16, [&](long b, long e, int) {
      for (long j = b; j < e; j++) {
        const float gj = g[j] * scale;
        const float mj = b1 * m[j] + (1.0f - b1) * gj;
        const float vj = b2 * v[j] + (1.0f - b2) * gj * gj;
        m[j] = mj;
        v[j] = vj;
        p[j] = p[j] * keep - lr * ((mj / c1) / (std::sqrt(vj / c2) + eps));
      }
    });
  }
  return undefinedValue(env);
}

// ---------------------------------------------------------------------------------------------
// Decoding with a KV cache: one call runs a GPT over t new tokens for each of n sequences and
// returns the logits of each sequence's last position. Weights are read where they live.
//
// Two shapes of work, two paths. A prompt or a rebuilt window (many rows) is compute bound:
// matrix products on the float32 weights through BLAS. One new token per sequence (a few
// rows) is memory bound: every weight is read once per token, so the products stream the
// weights at memory bandwidth from a copy laid out for it ("packed": one contiguous row of
// K inputs per output, so each thread reads its own rows front to back), in float32, IEEE
// half (half the bytes) or int8 with one scale per output (a quarter of the bytes).

// A packed weight: N rows of K (W transposed), in one of three formats.
struct Packed {
  const float* f = nullptr;
  const uint16_t* h = nullptr;
  const int8_t* q = nullptr;
  const float* scale = nullptr;  // int8 only: one per output row
};

// IEEE half ↔ float without hardware help (the hardware path is used where the CPU has F16C).
float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(man & 0x400u)) {
        man <<= 1;
        exp--;
      }
      bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t floatToHalf(float f) {
#if defined(__F16C__) && defined(__FMA__)
  return static_cast<uint16_t>(_cvtss_sh(f, 0));  // round to nearest even
#else
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int exp = static_cast<int>((x >> 23) & 0xffu) - 127 + 15;
  uint32_t man = x & 0x7fffffu;
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow (weights never get here)
  if (exp <= 0) return static_cast<uint16_t>(sign);              // flush tiny values to zero
  uint32_t h = sign | (static_cast<uint32_t>(exp) << 10) | (man >> 13);
  if ((man & 0x1fffu) > 0x1000u || ((man & 0x1fffu) == 0x1000u && (h & 1u))) h++;  // nearest even
  return static_cast<uint16_t>(h);
#endif
}

inline float toFloat(float v) { return v; }
inline float toFloat(uint16_t h) { return halfToFloat(h); }
inline float toFloat(int8_t q) { return static_cast<float>(q); }

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define MINIGLM_AVX2 1
// Eight weights as floats, whatever their format.
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
inline float horizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

// out[r] = Σ_k w[k]·x[r·K + k] for R input rows: the weight row is read once for all R.
template <int R, typename T>
void dotRows(const T* __restrict w, const float* __restrict x, long K, float* out) {
  long k = 0;
  for (int r = 0; r < R; r++) out[r] = 0.0f;
#ifdef MINIGLM_AVX2
  __m256 acc[R][2];
  for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (; k + 16 <= K; k += 16) {
    const __m256 w0 = load8(w + k), w1 = load8(w + k + 8);
    for (int r = 0; r < R; r++) {
      acc[r][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * K + k), acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + r * K + k + 8), acc[r][1]);
    }
  }
  for (int r = 0; r < R; r++) out[r] = horizontalSum(_mm256_add_ps(acc[r][0], acc[r][1]));
#endif
  for (; k < K; k++)
    for (int r = 0; r < R; r++) out[r] += toFloat(w[k]) * x[r * K + k];
}

inline float dot(const float* a, const float* b, long n) {
  float s;
  dotRows<1>(a, b, n, &s);
  return s;
}

// y[r, n] = Σ_k x[r, k]·P[n, k] (· scale[n]) + bias[n] for the R rows of x and the outputs
// n0 ≤ n < n1 of a packed product with N outputs; each output's packed row streams through
// once for all rows.
template <typename T>
void packedOutputs(const float* x, long R, long K, const T* P, const float* scale, long N, const float* bias, float* y,
                   long n0, long n1) {
  float out[4];
  for (long n = n0; n < n1; n++) {
    const T* row = P + n * K;
    const float s = scale ? scale[n] : 1.0f, b = bias ? bias[n] : 0.0f;
    for (long r0 = 0; r0 < R; r0 += 4) {
      const long rows = std::min<long>(4, R - r0);
      const float* xr = x + r0 * K;
      switch (rows) {
        case 1: dotRows<1>(row, xr, K, out); break;
        case 2: dotRows<2>(row, xr, K, out); break;
        case 3: dotRows<3>(row, xr, K, out); break;
        default: dotRows<4>(row, xr, K, out); break;
      }
      for (long i = 0; i < rows; i++) y[(r0 + i) * N + n] = out[i] * s + b;
    }
  }
}

void packedOutputs(const float* x, long R, long K, const Packed& p, long N, const float* bias, float* y, long n0,
                   long n1) {
  if (p.q) packedOutputs(x, R, K, p.q, p.scale, N, bias, y, n0, n1);
  else if (p.h) packedOutputs(x, R, K, p.h, nullptr, N, bias, y, n0, n1);
  else packedOutputs(x, R, K, p.f, nullptr, N, bias, y, n0, n1);
}

// The same over all outputs of a packed product, split between the threads.
template <typename T>
void packedRows(const float* x, long R, long K, const T* P, const float* scale, long N, const float* bias, float* y) {
  // At least 32k weights per thread: below that, waking the second thread costs more than it saves.
  parallelFor(N, std::max<long>(8, (1L << 15) / std::max<long>(K, 1)),
              [&](long n0, long n1, int) { packedOutputs(x, R, K, P, scale, N, bias, y, n0, n1); });
}

// Rows up to this many read the packed weights; more (a prompt, a rebuilt window) go to BLAS.
constexpr long kPackedRowsMax = 8;

// y[R, N] = x[R, K]·W[K, N] + bias: packed for a few rows, else one BLAS product on W.
void linearRows(const float* x, long R, long K, const float* W, const Packed* p, long N, const float* bias, float* y);

// One of several products of the same input (see linearRowsOf).
struct Product {
  const float* W;
  const Packed* p;
  long N;
  const float* bias;
  float* y;
};

// linearRows for three products of one input (q, k and v): for a few rows, one parallel region
// over the outputs of all three — a new token's step wakes the threads once instead of three
// times, and each such wake-up and wait costs about as much as a small product itself.
void linearRowsOf(const float* x, long R, long K, const Product (&ps)[3]) {
  const long N = ps[0].N;
  const bool packed = R <= kPackedRowsMax && ps[0].p && ps[1].p && ps[2].p && ps[1].N == N && ps[2].N == N;
  if (!packed) {
    for (const Product& p : ps) linearRows(x, R, K, p.W, p.p, p.N, p.bias, p.y);
    return;
  }
  parallelFor(3 * N, std::max<long>(8, (1L << 15) / std::max<long>(K, 1)), [&](long n0, long n1, int) {
    for (long j = n0 / N; j < 3 && j * N < n1; j++) {
      const Product& p = ps[j];
      packedOutputs(x, R, K, *p.p, N, p.bias, p.y, std::max(n0 - j * N, 0L), std::min(n1 - j * N, N));
    }
  });
}

void linearRows(const float* x, long R, long K, const float* W, const Packed* p, long N, const float* bias, float* y) {
  if (p && R <= kPackedRowsMax) {
    if (p->q) packedRows(x, R, K, p->q, p->scale, N, bias, y);
    else if (p->h) packedRows(x, R, K, p->h, nullptr, N, bias, y);
    else packedRows(x, R, K, p->f, nullptr, N, bias, y);
    return;
  }
  gemm(false, false, R, N, K, 1.0f, x, K, W, N, 0.0f, y, N);
  if (bias)
    for (long r = 0; r < R; r++)
      for (long j = 0; j < N; j++) y[r * N + j] += bias[j];
}

// packWeight(W, K, N, out, scale, outputRows): out[n, k] = W[k, n] in out's format: a
// Float32Array (float32), a Uint16Array (IEEE half) or an Int8Array (round(W / scale[n]) with
// scale[n] = max_k |W[k, n]| / 127). With outputRows, W is already [N, K] (the tied output
// layer wte) and is only converted.
napi_value PackWeight(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  size_t nw = 0, ns = 0, no = 0;
  float* W = a.f32(0, &nw);
  long K = a.idx(1), N = a.idx(2);
  bool outputRows = a.flag(5);
  if (!a.ok) return nullptr;
  napi_typedarray_type type;
  void* out = nullptr;
  bool is = false;
  napi_is_typedarray(env, a.argv[3], &is);
  if (is) napi_get_typedarray_info(env, a.argv[3], &type, &no, &out, nullptr, nullptr);
  if (!is || (type != napi_float32_array && type != napi_uint16_array && type != napi_int8_array)) {
    a.fail("packWeight: out must be a Float32Array, Uint16Array or Int8Array");
    return nullptr;
  }
  if (nw < static_cast<size_t>(K * N) || no < static_cast<size_t>(K * N)) {
    a.fail("packWeight: array too small for the shape");
    return nullptr;
  }
  float* scale = nullptr;
  if (type == napi_int8_array) {
    scale = a.f32(4, &ns);
    if (!a.ok) return nullptr;
    if (ns < static_cast<size_t>(N)) {
      a.fail("packWeight: int8 needs one scale per output");
      return nullptr;
    }
  }
  // One row per output first (a transposition in tiles: column by column would miss the
  // cache at every element), then each row converted on its own.
  std::vector<float> transposed;
  const float* rows = W;
  if (!outputRows) {
    // float32 is transposed straight into out (the row pass below then copies nothing).
    float* dst = type == napi_float32_array ? static_cast<float*>(out) : nullptr;
    if (!dst) {
      transposed.resize(static_cast<size_t>(K * N));
      dst = transposed.data();
    }
    constexpr long tile = 32;
    parallelFor((N + tile - 1) / tile, 1, [&](long t0, long t1, int) {
      for (long n0 = t0 * tile; n0 < std::min(N, t1 * tile); n0 += tile)
        for (long k0 = 0; k0 < K; k0 += tile)
          for (long n = n0; n < std::min(N, n0 + tile); n++)
            for (long k = k0; k < std::min(K, k0 + tile); k++) dst[n * K + k] = W[k * N + n];
    });
    rows = dst;
  }
  parallelFor(N, 16, [&](long n0, long n1, int) {
    for (long n = n0; n < n1; n++) {
      const float* row = rows + n * K;
      if (type == napi_float32_array) {
        if (row != static_cast<float*>(out) + n * K) std::memcpy(static_cast<float*>(out) + n * K, row, sizeof(float) * K);
      } else if (type == napi_uint16_array) {
        for (long k = 0; k < K; k++) static_cast<uint16_t*>(out)[n * K + k] = floatToHalf(row[k]);
      } else {
        float mx = 0;
        for (long k = 0; k < K; k++) mx = std::max(mx, std::fabs(row[k]));
        scale[n] = mx > 0 ? mx / 127.0f : 1.0f;
        const float inv = 1.0f / scale[n];
        for (long k = 0; k < K; k++)
          static_cast<int8_t*>(out)[n * K + k] = static_cast<int8_t>(std::lround(row[k] * inv));
      }
    }
  });
  return undefinedValue(env);
}

// readBandwidth(megabytes): how fast both threads read memory (GB/s, best of five passes over
// a buffer of that size): the bound of a one-token decoding step, which reads every weight.
napi_value ReadBandwidth(napi_env env, napi_callback_info info) {
  Args a(env, info, 1);
  const long mb = a.idx(0);
  if (!a.ok) return nullptr;
  if (mb < 1 || mb > 4096) {
    a.fail("readBandwidth: megabytes must be 1 to 4096");
    return nullptr;
  }
  const long n = mb * (1L << 18);  // floats
  std::vector<float> buffer(static_cast<size_t>(n), 1.0f);
  std::vector<float> sums(static_cast<size_t>(gThreads), 0.0f);
  double best = 0;
  for (int pass = 0; pass < 5; pass++) {
    const auto start = std::chrono::steady_clock::now();
    parallelFor(n / 4096, 1, [&](long b0, long b1, int t) {
      const float* p = buffer.data() + b0 * 4096;
      float out;
      dotRows<1>(p, p, (b1 - b0) * 4096, &out);  // reads each float once (as both operands)
      sums[t] += out;
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(n) * sizeof(float) / seconds / 1e9);
  }
  if (sums[0] < 0) best = 0;  // keeps the sums alive
  return numberValue(env, best);
}

// Attention of t new positions per sequence over the cache (causal): y [R, C].
void decodeAttention(const float* q, const float* kc, const float* vc, float* y, long n, long t, long pos, long H,
                     long C, long block) {
  const long hs = C / H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  // At least ~8k multiply-adds per thread: one new token over a few hundred cached ones is
  // already worth splitting by heads.
  parallelFor(n * H, std::max<long>(1, (1L << 13) / std::max<long>(t * (pos + t) * hs, 1)), [&](long i0, long i1, int) {
    std::vector<float> s(static_cast<size_t>(pos + t));
    for (long bh = i0; bh < i1; bh++) {
      const long b = bh / H, hd = bh % H;
      const float* K = kc + b * block * C + hd * hs;
      const float* V = vc + b * block * C + hd * hs;
      for (long i = 0; i < t; i++) {
        const float* qi = q + (b * t + i) * C + hd * hs;
        const long keys = pos + i + 1;
        float mx = -INFINITY;
        for (long j = 0; j < keys; j++) {
          s[j] = dot(qi, K + j * C, hs) * scale;
          mx = s[j] > mx ? s[j] : mx;
        }
        float sum = 0;
        for (long j = 0; j < keys; j++) {
          s[j] = fastExp(s[j] - mx);
          sum += s[j];
        }
        float* yi = y + (b * t + i) * C + hd * hs;
        for (long c = 0; c < hs; c++) yi[c] = 0;
        const float inv = 1.0f / sum;
        for (long j = 0; j < keys; j++) {
          const float pj = s[j] * inv;
          const float* vj = V + j * C;
          for (long c = 0; c < hs; c++) yi[c] += pj * vj[c];
        }
      }
    }
  });
}

// gptDecode(weights, dims: Int32Array [n, t, pos, C, H, L, V, block], kCache[], vCache[],
//           idx: Int32Array [n·t], logits: Float32Array [n·V], eps, packed)
// weights: wte, wpe, then per layer ln1.g, ln1.b, wq, bq, wk, bk, wv, bv, wo, bo, ln2.g, ln2.b,
// wfc, bfc, wproj, bproj, then lnf.g, lnf.b; absent biases are null. Caches: [n, block, C] per
// layer; positions pos … pos + t − 1 are written. packed (or null): [weight, scale] pairs from
// packWeight for wq, wk, wv, wo, wfc, wproj of each layer, then the output layer (wte); the
// scale is an empty Float32Array except for int8.
napi_value GptDecode(napi_env env, napi_callback_info info) {
  Args a(env, info, 7);
  size_t nd, ni, nl;
  int32_t* dims = a.i32(1, &nd);
  int32_t* idx = a.i32(4, &ni);
  float* logits = a.f32(5, &nl);
  const float eps = static_cast<float>(a.num(6));
  if (!a.ok) return nullptr;
  if (nd < 8) {
    a.fail("gptDecode: dims must hold 8 numbers");
    return nullptr;
  }
  const long n = dims[0], t = dims[1], pos = dims[2], C = dims[3], H = dims[4], L = dims[5], V = dims[6],
             block = dims[7];
  const long R = n * t;
  if (n < 1 || t < 1 || pos < 0 || pos + t > block || H < 1 || C % H != 0 || ni < static_cast<size_t>(R) ||
      nl < static_cast<size_t>(n * V)) {
    a.fail("gptDecode: bad dimensions");
    return nullptr;
  }
  const uint32_t want = static_cast<uint32_t>(2 + 16 * L + 2);
  if (a.length(0) != want || a.length(2) != static_cast<uint32_t>(L) || a.length(3) != static_cast<uint32_t>(L)) {
    a.fail("gptDecode: expected " + std::to_string(want) + " weights and one cache per layer");
    return nullptr;
  }
  // Each weight with the size it must have (0: absent, a bias).
  std::vector<float*> w(want, nullptr);
  auto expect = [&](uint32_t i, long size, bool optional) {
    napi_value v = a.element(0, i);
    napi_valuetype vt;
    napi_typeof(env, v, &vt);
    if (optional && (vt == napi_null || vt == napi_undefined)) return;
    size_t len = 0;
    w[i] = f32Of(a, v, &len);
    if (a.ok && len != static_cast<size_t>(size)) a.fail("gptDecode: weight " + std::to_string(i) + " has the wrong size");
  };
  expect(0, V * C, false);
  expect(1, block * C, false);
  for (long l = 0; l < L; l++) {
    const uint32_t o = static_cast<uint32_t>(2 + 16 * l);
    const long sizes[16] = {C, C, C * C, C, C * C, C, C * C, C, C * C, C, C, C, C * 4 * C, 4 * C, 4 * C * C, C};
    for (uint32_t j = 0; j < 16; j++) expect(o + j, sizes[j], j % 2 == 1);  // odd entries are biases
  }
  expect(want - 2, C, false);
  expect(want - 1, C, true);
  std::vector<float*> kc(L), vc(L);
  for (long l = 0; l < L && a.ok; l++) {
    size_t lk = 0, lv = 0;
    kc[l] = f32Of(a, a.element(2, l), &lk);
    vc[l] = f32Of(a, a.element(3, l), &lv);
    if (a.ok && (lk != static_cast<size_t>(n * block * C) || lv != lk)) a.fail("gptDecode: cache of the wrong size");
  }
  if (!a.ok) return nullptr;
  for (long r = 0; r < R; r++)
    if (idx[r] < 0 || idx[r] >= V) {
      a.fail("gptDecode: token id " + std::to_string(idx[r]) + " outside the vocabulary of " + std::to_string(V));
      return nullptr;
    }

  // The packed copies, checked against the sizes of the weights they stand for.
  std::vector<Packed> packed;
  napi_valuetype pt = napi_undefined;
  if (a.argc > 7) napi_typeof(env, a.argv[7], &pt);
  if (pt == napi_object) {
    const long count = 6 * L + 1;
    if (a.length(7) != static_cast<uint32_t>(2 * count)) {
      a.fail("gptDecode: packed must hold a [weight, scale] pair per product weight");
      return nullptr;
    }
    packed.resize(count);
    for (long i = 0; i < count && a.ok; i++) {
      const long j = i % 6;
      const long size = i == count - 1 ? V * C : (j < 4 ? C * C : 4 * C * C);
      napi_value pv = a.element(7, static_cast<uint32_t>(2 * i));
      napi_typedarray_type type;
      size_t len = 0, slen = 0;
      void* data = nullptr;
      bool is = false;
      napi_is_typedarray(env, pv, &is);
      if (is) napi_get_typedarray_info(env, pv, &type, &len, &data, nullptr, nullptr);
      if (!is || len != static_cast<size_t>(size)) {
        a.fail("gptDecode: packed weight " + std::to_string(i) + " is missing or has the wrong size");
        break;
      }
      if (type == napi_float32_array) packed[i].f = static_cast<const float*>(data);
      else if (type == napi_uint16_array) packed[i].h = static_cast<const uint16_t*>(data);
      else if (type == napi_int8_array) {
        packed[i].q = static_cast<const int8_t*>(data);
        packed[i].scale = f32Of(a, a.element(7, static_cast<uint32_t>(2 * i + 1)), &slen);
        const long outputs = i == count - 1 ? V : (j == 4 ? 4 * C : C);
        if (a.ok && slen != static_cast<size_t>(outputs)) a.fail("gptDecode: int8 weight without one scale per output");
      } else {
        a.fail("gptDecode: packed weights must be Float32Array, Uint16Array or Int8Array");
      }
    }
    if (!a.ok) return nullptr;
  }
  const Packed* pk = packed.empty() ? nullptr : packed.data();

  std::vector<float> x(R * C), h(R * C), q(R * C), k(R * C), v(R * C), y(R * C), f(R * 4 * C), g(R * 4 * C),
      o(R * C);
  for (long r = 0; r < R; r++) {
    const float* e = w[0] + static_cast<long>(idx[r]) * C;
    const float* pe = w[1] + (pos + r % t) * C;
    for (long c = 0; c < C; c++) x[r * C + c] = e[c] + pe[c];
  }
  for (long l = 0; l < L; l++) {
    float** lw = w.data() + 2 + 16 * l;
    const Packed* lp = pk ? pk + 6 * l : nullptr;
    auto product = [&](int j) { return lp ? lp + j : nullptr; };
    layerNormRows(x.data(), lw[0], lw[1], h.data(), nullptr, nullptr, R, C, eps);
    linearRowsOf(h.data(), R, C,
                 {{lw[2], product(0), C, lw[3], q.data()},
                  {lw[4], product(1), C, lw[5], k.data()},
                  {lw[6], product(2), C, lw[7], v.data()}});
    for (long b = 0; b < n; b++)
      for (long i = 0; i < t; i++) {
        std::memcpy(kc[l] + (b * block + pos + i) * C, k.data() + (b * t + i) * C, sizeof(float) * C);
        std::memcpy(vc[l] + (b * block + pos + i) * C, v.data() + (b * t + i) * C, sizeof(float) * C);
      }
    decodeAttention(q.data(), kc[l], vc[l], y.data(), n, t, pos, H, C, block);
    linearRows(y.data(), R, C, lw[8], product(3), C, lw[9], o.data());
    for (long i = 0; i < R * C; i++) x[i] += o[i];
    layerNormRows(x.data(), lw[10], lw[11], h.data(), nullptr, nullptr, R, C, eps);
    linearRows(h.data(), R, C, lw[12], product(4), 4 * C, lw[13], f.data());
    geluRows(f.data(), g.data(), R * 4 * C);
    linearRows(g.data(), R, 4 * C, lw[14], product(5), C, lw[15], o.data());
    for (long i = 0; i < R * C; i++) x[i] += o[i];
  }
  // Only each sequence's last position is read out: LayerNorm, then the tied output layer
  // (logits = h·wteᵀ: wte [V, C] is already one row per output).
  std::vector<float> last(n * C);
  for (long b = 0; b < n; b++) std::memcpy(last.data() + b * C, x.data() + (b * t + t - 1) * C, sizeof(float) * C);
  layerNormRows(last.data(), w[want - 2], w[want - 1], h.data(), nullptr, nullptr, n, C, eps);
  Packed head;
  head.f = w[0];
  const Packed& out = pk ? pk[6 * L] : head;
  if (n <= kPackedRowsMax) {
    if (out.q) packedRows(h.data(), n, C, out.q, out.scale, V, nullptr, logits);
    else if (out.h) packedRows(h.data(), n, C, out.h, nullptr, V, nullptr, logits);
    else packedRows(h.data(), n, C, out.f, nullptr, V, nullptr, logits);
  } else {
    gemm(false, true, n, V, C, 1.0f, h.data(), C, w[0], C, 0.0f, logits, V);
  }
  return undefinedValue(env);
}

napi_value Init(napi_env env, napi_value exports) {
  struct Fn {
    const char* name;
    napi_callback cb;
  } fns[] = {
      {"threads", Threads},         {"config", Config},           {"sgemm", Sgemm},
      {"layerNormFwd", LayerNormFwd}, {"layerNormBwd", LayerNormBwd}, {"geluFwd", GeluFwd},
      {"geluBwd", GeluBwd},         {"attnFwd", AttnFwd},         {"attnBwd", AttnBwd},
      {"crossEntropy", CrossEntropy}, {"binary", Binary},           {"colSum", ColSum},
      {"embedFwd", EmbedFwd},       {"embedBwd", EmbedBwd},       {"sumSquares", SumSquares},
      {"adamw", AdamW},             {"gptDecode", GptDecode},     {"packWeight", PackWeight},
      {"readBandwidth", ReadBandwidth},
  };
  openblas_set_num_threads(1);  // see gThreads
  for (const Fn& f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
