"""TensorRollout: a policy evaluator whose environments are tensors, so acting is a tensor program.

A RolloutWorker steps a gymnasium vector environment: numpy in, numpy out, one Python call
per environment step through gymnasium's wrappers. When the environment itself is written
in tensors (`distrl.envs.cartpole`), the policy and the environment can run in one loop on
one device with nothing converted in between, and the only Python left is one iteration
per time step for all N environments:

    for t in 0..T−1:
        a_t ~ π(·|s_t)                                 one forward pass of the actor for N envs
        s_{t+1}, r_t, done_t = cartpole.step(s_t, a_t)  one call for N envs

This is the acting half of Podracer's Anakin (`distrl.optimizers.anakin`). It needs neither
Ray nor gymnasium, so it runs wherever torch runs, a GPU included.
"""

from __future__ import annotations

import torch

from .envs import cartpole

Layers = list[tuple[torch.Tensor, torch.Tensor]]
STEPS_PER_CALL = 8  # time steps per call of `steps`: the unit torch.compile turns into one program
TANH_BY_SIGMOID_FROM = 4096  # elements: from here on a CPU actor's tanh is 2σ(2x) − 1 (see `acting_tanh`)
COLUMNS = ("obs", "actions", "logp", "rewards", "terminateds", "truncateds", "next_obs", "episode_returns")


class TensorRollout:
    """N environments and the actor, stepped T times as one batch.

    The actor's layers are applied with `torch.nn.functional.linear` on the parameter
    tensors it is given (a Policy's own, so acting sees every update without a copy), and
    the step's random numbers (Gumbel noise for the actions, the states a finished episode
    restarts from) are drawn for the whole unroll up front: each step is then a pure
    function of tensors, which `torch.compile` can trace.
    """

    def __init__(self, actor: Layers, num_envs: int, seed: int, compile: bool = False,
                 device: torch.device | str = "cpu"):
        self.actor, self.num_envs, self.device = actor, num_envs, device
        self.generator = torch.Generator(device=device).manual_seed(seed)
        with torch.inference_mode():  # as every later state is: a compiled step then sees one kind of tensor
            self.state = cartpole.initial_state(num_envs, self.generator, device)
            self.elapsed = torch.zeros(num_envs, dtype=torch.int64, device=device)
            self.running_return = torch.zeros(num_envs, device=device)
        # Compiled, STEPS_PER_CALL steps of actor and environment become one program, and the
        # ~40 eager calls a step costs are paid once per call. Measured on this project's
        # 2-core CPU at N = 256: 281 µs per step eager, 244 with only the environment
        # compiled, 167 with 8 steps per call (16 and 32 steps: 160 and 155, for 2× and 4×
        # the compile time). At N = 4096, where the matmuls and tanh dominate, it was no
        # faster on an Intel host (5–15% slower in three runs), 1.5× faster on an AMD EPYC
        # one, and 4× faster on an H200.
        # On the CPU, cpp_wrapper: the compiled program calls its kernels from C++ instead of
        # Python, 12–14% more steps per second at N = 256 here (two runs each way). Not
        # measured on a GPU, so not used there.
        options = {"cpp_wrapper": True} if torch.device(device).type == "cpu" else {}
        self.steps = torch.compile(steps, dynamic=False, options=options) if compile else steps

    @torch.inference_mode()
    def run(self, unroll: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """T steps of all N environments: the [T, N] columns, and the returns of the episodes that ended."""
        n = self.num_envs
        gumbel = torch.empty(unroll, n, cartpole.NUM_ACTIONS, device=self.device).exponential_(generator=self.generator).log_().neg_()
        resets = cartpole.initial_state(unroll * n, self.generator, self.device).view(unroll, n, cartpole.OBS_DIM)
        chunks = []
        state, elapsed, running = self.state, self.elapsed, self.running_return
        for start in range(0, unroll, STEPS_PER_CALL):
            window = slice(start, start + STEPS_PER_CALL)
            state, elapsed, running, chunk = self.steps(self.actor, state, elapsed, running, gumbel[window], resets[window])
            chunks.append(chunk)
        self.state, self.elapsed, self.running_return = state, elapsed, running
        columns = {name: torch.cat([chunk[name] for chunk in chunks]) for name in chunks[0]}
        done = columns["terminateds"] | columns["truncateds"]
        return columns, columns.pop("episode_returns")[done]


def steps(actor: Layers, state: torch.Tensor, elapsed: torch.Tensor, running: torch.Tensor, gumbel: torch.Tensor,
          resets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """K = len(gumbel) consecutive steps of every environment: the next (state, elapsed,
    running return) and the [K, N] columns of COLUMNS."""
    columns: dict[str, list[torch.Tensor]] = {name: [] for name in COLUMNS}
    for t in range(len(gumbel)):
        out = act_and_step(actor, state, elapsed, running, gumbel[t], resets[t])
        for name, value in zip(COLUMNS, (state,) + out[3:]):
            columns[name].append(value)
        state, elapsed, running = out[:3]
    return state, elapsed, running, {name: torch.stack(values) for name, values in columns.items()}


def act_and_step(actor: Layers, state: torch.Tensor, elapsed: torch.Tensor, running: torch.Tensor, gumbel: torch.Tensor,
                 reset: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """One step of every environment: a ~ π(·|s) by Gumbel-max, then the cart and pole.

    Returns the next (state, elapsed, running return) and this step's (action, log π(a|s),
    reward, terminated, truncated, next observation, return so far)."""
    action, logp = act(actor, state, gumbel)
    env = cartpole.step(state, elapsed, action, reset)
    episode_return = running + env.reward
    running = torch.where(env.terminated | env.truncated, 0.0, episode_return)
    return (env.state, env.elapsed, running, action, logp, env.reward, env.terminated, env.truncated,
            env.final_obs, episode_return)


def act(actor, obs: torch.Tensor, gumbel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """a ~ π(·|s) for each row by Gumbel-max, argmax(log π + G) with G = −log E, E ~ Exp(1)
    given as `gumbel`; and log π(a|s)."""
    logp_all = torch.log_softmax(mlp(actor, obs, acting_tanh), -1)
    action = (logp_all + gumbel).argmax(-1)
    return action, logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1)


def linear_layers(mlp: torch.nn.Sequential) -> Layers:
    """The (weight, bias) of each Linear in an MLP, the same tensors (not copies)."""
    return [(m.weight, m.bias) for m in mlp if isinstance(m, torch.nn.Linear)]


def mlp(layers: Layers, x: torch.Tensor, tanh=torch.tanh) -> torch.Tensor:
    """The MLP of `layers` with tanh between them, as distrl's ActorCritic builds it."""
    for i, (weight, bias) in enumerate(layers):
        x = torch.nn.functional.linear(x, weight, bias)
        if i < len(layers) - 1:
            x = tanh(x)
    return x


def acting_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh, as the acting program computes it: through the identity tanh(x) = 2σ(2x) − 1 for
    a large batch on the CPU, within 2·10⁻⁷ of torch.tanh (an absolute difference).

    On a contiguous CPU tensor torch.tanh calls MKL's vector math library, which picks its
    kernel by processor. On this project's AMD EPYC host it ran a generic one (perf named
    `mkl_vml_kernel_sTanh_EXHAynn`), and tanh was 53–55 % of an eager acting step at
    N = 4,096: 2.3 ns per element, where ATen's own vectorised σ takes 0.24, and the
    identity was about 5× faster on a [4096, 64] batch. It is four calls instead of one,
    though, so below a few thousand elements the calls cost more than the kernel saves
    (measured there in a script, eager steps/s: 6 % fewer at N = 32, 3 % more at 64, 13 % at
    128, 1.9× at 4,096; compiled, the fused identity was 1.5× as fast as inductor's own
    tanh at 4,096). MKL may pick a faster kernel on Intel processors, where the identity may
    not pay; that was not measured. On a GPU torch's tanh is one fast kernel, so it is kept
    there.

    The learner recomputes log π(a|s) with torch.tanh (the Policy's), so PPO's first ratio
    on a large batch is 1 within about 10⁻⁷, not exactly."""
    if x.device.type != "cpu" or x.numel() < TANH_BY_SIGMOID_FROM:
        return torch.tanh(x)
    return (2 * torch.sigmoid(2 * x)).sub_(1)
