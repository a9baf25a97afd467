#include "async_work.h"

#include <new>

#include "../core/error.h"
#include "js_errors.h"

namespace atoma::addon {
namespace {

class KernelWorker : public Napi::AsyncWorker {
 public:
  KernelWorker(Napi::Env env, std::vector<Napi::Value> keep_alive, std::function<void()> work, ResultMaker result)
      : Napi::AsyncWorker(env, "atoma:kernel"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), result_(std::move(result)) {
    for (auto& v : keep_alive)
      if (!v.IsEmpty() && v.IsObject()) refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      work_();
    } catch (const atoma::Error& e) {
      code_ = e.code;
      message_ = e.what();
    } catch (const std::bad_alloc&) {
      code_ = "ERR_OUT_OF_MEMORY";
      message_ = "native allocation failed";
    } catch (const std::exception& e) {
      code_ = "ERR_INTERNAL";
      message_ = e.what();
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (!code_.empty()) {
      deferred_.Reject(make_error(env, code_, message_).Value());
      return;
    }
    try {
      deferred_.Resolve(result_ ? result_(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  ResultMaker result_;
  std::vector<Napi::ObjectReference> refs_;
  std::string code_, message_;
};

}  // namespace

Napi::Promise run_async(Napi::Env env, std::vector<Napi::Value> keep_alive, std::function<void()> work,
                        ResultMaker result) {
  auto* worker = new KernelWorker(env, std::move(keep_alive), std::move(work), std::move(result));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace atoma::addon
