// The kiln side of the torch.optim parity tests: trains a small MLP with one
// optimizer configuration (a named case) for a fixed number of updates, and
// writes the initial params, the data of every call, the losses and the final
// params as JSON for optim_parity.py, which replays the same run with
// torch.optim and compares.
//
//   optim_driver --list            prints the case names
//   optim_driver CASE OUT.json     runs one case
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <kiln/kiln.h>
#include <kiln/rt/Random.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

using namespace kiln;

namespace {

constexpr int64_t kBatch = 8, kIn = 4, kHidden = 6, kClasses = 3;
constexpr int kUpdates = 20;

// x -> tanh(x W1 + b1) W2 + b2 -> mean softmax cross-entropy
struct Net {
  Graph g;
  Module m{g};
  Tensor x, y, loss;
  Linear l1{g, "l1", kIn, kHidden}, l2{g, "l2", kHidden, kClasses};
  Net() {
    x = g.input("x", {kBatch, kIn});
    y = g.input("y", {kBatch}, DType::I32);
    loss = mean(softmaxCrossEntropy(l2(tanh(l1(x))), y));
  }
};

struct Case {
  std::string name;
  Optimizer opt;
  std::function<TrainOptions(Net&)> options = [](Net&) { return TrainOptions{}; };
};

std::vector<Case> cases() {
  return {
      {"sgd", SGD{.lr = 0.1}},
      {"sgd_momentum", SGD{.lr = 0.1, .momentum = 0.9}},
      {"sgd_nesterov", SGD{.lr = 0.1, .momentum = 0.9, .nesterov = true}},
      {"sgd_dampening_wd", SGD{.lr = 0.1, .momentum = 0.9, .dampening = 0.3, .weightDecay = 0.01}},
      {"adagrad", Adagrad{.lr = 0.1}},
      {"adagrad_decay_wd", Adagrad{.lr = 0.1, .lrDecay = 0.05, .weightDecay = 0.01, .initialAccumulatorValue = 0.1}},
      {"rmsprop", RMSprop{.lr = 0.01}},
      {"rmsprop_momentum", RMSprop{.lr = 0.01, .weightDecay = 0.01, .momentum = 0.9}},
      {"rmsprop_centered", RMSprop{.lr = 0.01, .momentum = 0.5, .centered = true}},
      {"adam", Adam{.lr = 0.01}},
      {"adam_wd_amsgrad", Adam{.lr = 0.01, .weightDecay = 0.01, .amsgrad = true}},
      {"adamw", AdamW{.lr = 0.01}},
      {"adamw_amsgrad", AdamW{.lr = 0.01, .weightDecay = 0.1, .amsgrad = true}},
      {"adam_clip_norm", Adam{.lr = 0.01}, [](Net&) { return TrainOptions{.clipNorm = 0.1}; }},
      {"sgd_clip_value", SGD{.lr = 0.1, .momentum = 0.9}, [](Net&) { return TrainOptions{.clipValue = 0.02}; }},
      {"sgd_step_lr", SGD{.lr = 0.2, .momentum = 0.5},
       [](Net&) { return TrainOptions{.schedule = StepLR{.stepSize = 6, .gamma = 0.5}}; }},
      {"adam_warmup_exponential", Adam{.lr = 0.02},
       [](Net&) {
         return TrainOptions{.schedule = ExponentialLR{.gamma = 0.9},
                             .warmup = LinearWarmup{.steps = 5, .startFactor = 0.25}};
       }},
      {"sgd_cosine", SGD{.lr = 0.2, .momentum = 0.5},
       [](Net&) { return TrainOptions{.schedule = CosineAnnealingLR{.tMax = 8, .etaMin = 0.01}}; }},
      {"adam_warmup_cosine", Adam{.lr = 0.02},
       [](Net&) {
         return TrainOptions{.schedule = CosineAnnealingLR{.tMax = 8},
                             .warmup = LinearWarmup{.steps = 4, .startFactor = 0.1}};
       }},
      {"sgd_groups", SGD{.lr = 0.1, .momentum = 0.9, .weightDecay = 0.05},
       [](Net& n) {
         return TrainOptions{.groups = {{.params = {n.l1.bias, n.l2.bias}, .weightDecay = 0.0},
                                        {.params = {n.l2.weight}, .lr = 0.3}}};
       }},
      {"adam_frozen", Adam{.lr = 0.01}, [](Net& n) { return TrainOptions{.frozen = {n.l1.weight}}; }},
      {"sgd_accumulate", SGD{.lr = 0.1, .momentum = 0.9}, [](Net&) { return TrainOptions{.accumulate = 3}; }},
  };
}

std::string jsonFloats(const float* p, int64_t n) {
  std::string s = "[";
  for (int64_t i = 0; i < n; ++i) s += fmt::format("{}{:.9g}", i ? "," : "", p[i]);
  return s + "]";
}

std::string jsonParams(jit::CompiledModule& jm) {
  std::string s = "{";
  bool first = true;
  for (const char* p : {"l1.w", "l1.b", "l2.w", "l2.b"}) {
    const ir::TensorType& t = jm.type(p);
    s += fmt::format("{}\"{}\": {{\"shape\": [{}], \"data\": {}}}", first ? "" : ", ", p, fmt::join(t.shape, ","),
                     jsonFloats(jm.f32(p), t.numElements()));
    first = false;
  }
  return s + "}";
}

int run(const Case& c, const std::string& outPath) {
  Net n;
  TrainOptions options = c.options(n);
  n.m.addTrainStep("trainStep", n.loss, c.opt, options);
  auto jm = jit::compile(n.m);
  jm->init(7);
  std::string init = jsonParams(*jm);
  int calls = kUpdates * static_cast<int>(options.accumulate);
  std::vector<std::string> xs, ys, losses;
  for (int call = 0; call < calls; ++call) {
    float* x = jm->f32("x");
    for (int64_t i = 0; i < kBatch * kIn; ++i) x[i] = 4.0f * rt::uniform01(11, call, i) - 2.0f;
    int32_t* y = jm->i32("y");
    for (int64_t i = 0; i < kBatch; ++i) y[i] = static_cast<int32_t>(rt::uniform01(12, call, i) * kClasses);
    xs.push_back(jsonFloats(x, kBatch * kIn));
    ys.push_back(fmt::format("[{}]", fmt::join(std::vector<int32_t>(y, y + kBatch), ",")));
    jm->run("trainStep");
    losses.push_back(fmt::format("{:.9g}", jm->f32("trainStep.loss")[0]));
  }
  std::string json = fmt::format(
      "{{\"case\": \"{}\", \"accumulate\": {}, \"updates\": {}, \"init\": {},\n\"x\": [{}],\n\"y\": [{}],\n"
      "\"loss\": [{}],\n\"final\": {}}}\n",
      c.name, options.accumulate, kUpdates, init, fmt::join(xs, ","), fmt::join(ys, ","), fmt::join(losses, ","),
      jsonParams(*jm));
  std::FILE* f = std::fopen(outPath.c_str(), "w");
  if (!f) {
    fmt::print(stderr, "optim_driver: cannot write {}\n", outPath);
    return 1;
  }
  std::fputs(json.c_str(), f);
  std::fclose(f);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Case> all = cases();
  if (argc == 2 && std::string(argv[1]) == "--list") {
    for (const Case& c : all) fmt::print("{}\n", c.name);
    return 0;
  }
  if (argc != 3) {
    fmt::print(stderr, "usage: optim_driver --list | optim_driver CASE OUT.json\n");
    return 2;
  }
  for (const Case& c : all)
    if (c.name == argv[1]) {
      try {
        return run(c, argv[2]);
      } catch (const Error& e) {
        fmt::print(stderr, "{}\n", e.what());
        return 1;
      }
    }
  fmt::print(stderr, "optim_driver: no case '{}'\n", argv[1]);
  return 2;
}
