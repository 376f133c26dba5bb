"""Next-purchase recommenders: a SASRec teacher and a phone-sized student.

Contract (both): input int64 (B, K) item ids, oldest first, left-padded with 0; output float32
(B, num_items) scores over the whole catalogue. Padding is masked by arithmetic (multiplying by and
adding masks), never by branching on values, so torch.export, ONNX, ExecuTorch and CoreML all see
one static graph. Each model's user representation is the output of its `encoder` submodule,
(B, dim): the layer that feature- and relation-based distillation hook (`FEATURE_LAYER`).

Both score  s(b) = u · E_b + c_b + Σ_j w_j [h_j = b]:  the output layer is tied to the item
embedding E (small init, std 0.05, so the first loss is near ln(catalogue)), and the re-buy path
(`RebuyPath`) adds a learned weight per history slot to the items bought there, because about a
fifth of a next order's items were bought before and a dot product cannot express "the same item".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_LAYER = "encoder"
NEG = -1e4  # additive mask value: finite (no NaN when a row is all padding) and safe in float16
INIT_STD = 0.05


class RebuyPath(nn.Module):
    """The items already in the history, scored by how often and how recently they were bought.

    counts="linear": score(b) += Σ_j (w_j + r_b) [h_j = b], a learned weight per history slot
    (recency) plus, with `per_item`, a learned repeat propensity per item (refills are re-bought,
    gifts are not).
    counts="log": score(b) += Σ_h a_h log(1 + Σ_j w_hj [h_j = b]) + r_b [b in history], with slot
    weights w_hj = exp(θ_h[bucket(j)]) shared by recency buckets (1, 2, 3-4, 5-8, ... lines back), so
    a long history needs ~log2(K) numbers per head, not K. The saturating count is what makes
    "re-buy your items" combine with popularity: on the full Online Retail data (K 100, no
    embedding at all) it reaches test NDCG@10 0.294 where the linear count reaches 0.279 and the
    parameter-free repeat rule 0.285. Heads start at different recency decays (head h halves its
    weight every 2/h buckets), so they do not stay copies of each other.

    Two index forms, the same numbers: "scatter" (scatter_add of the slot weights into the score row)
    and "equality" ((h_j == b) as a (B, K, items) 0/1 tensor, contracted with w by a matmul). Both
    export to ONNX (ScatterElements add / Equal+MatMul), ExecuTorch and CoreML; tests/models check
    each through all three. The padding id's row gets weight too, which nothing ranks."""

    def __init__(self, num_items: int, max_len: int, form: str = "scatter", init: float = 3.0,
                 per_item: bool = True, counts: str = "linear", heads: int = 2) -> None:
        super().__init__()
        if form not in ("scatter", "equality"):
            raise ValueError(f"rebuy form must be 'scatter' or 'equality', got {form!r}")
        if counts not in ("linear", "log"):
            raise ValueError(f"rebuy counts must be 'linear' or 'log', got {counts!r}")
        self.form, self.counts = form, counts
        if counts == "linear":
            self.weight = nn.Parameter(torch.full((max_len,), float(init)))
        else:
            recency = torch.arange(max_len - 1, -1, -1)  # slot j is K-1-j lines before the order
            bucket = torch.floor(torch.log2(recency.double() + 1)).long()
            self.register_buffer("bucket", bucket, persistent=False)
            steps = torch.arange(int(bucket.max()) + 1, dtype=torch.float32)
            self.theta = nn.Parameter(torch.stack([-0.35 * h * steps for h in range(heads)]))
            self.scale = nn.Parameter(torch.full((heads,), 2.0))
        self.item = nn.Embedding(num_items, 1) if per_item else None
        if self.item is not None:
            nn.init.zeros_(self.item.weight)
        self.register_buffer("item_ids", torch.arange(num_items), persistent=False)

    def _counts(self, ids: torch.Tensor, w: torch.Tensor, num_items: int, dtype: torch.dtype) -> torch.Tensor:
        """(B, H, items): Σ_j w[b?, h, j] [ids_j = item] for slot weights w (B, H, K)."""
        if self.form == "scatter":
            index = ids[:, None, :].expand(-1, w.shape[1], -1)
            return w.new_zeros(ids.shape[0], w.shape[1], num_items).scatter_add(2, index, w)
        onehot = (ids[..., None] == self.item_ids).to(dtype)  # (B, K, items)
        return torch.matmul(w, onehot)

    def forward(self, ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        b, n = ids.shape[0], scores.shape[1]
        if self.counts == "linear":
            w = self.weight.to(scores.dtype).expand(b, -1)  # (B, K)
            if self.item is not None:
                w = w + self.item(ids)[..., 0].to(scores.dtype)
            return scores + self._counts(ids, w[:, None, :], n, scores.dtype)[:, 0]
        slot = torch.exp(self.theta.to(scores.dtype))[:, self.bucket]  # (H, K)
        w = torch.cat([slot, torch.ones_like(slot[:1])], dim=0)  # + one unweighted row: presence
        c = self._counts(ids, w[None].expand(b, -1, -1), n, scores.dtype)  # (B, H + 1, items)
        heads = c.shape[1] - 1
        out = scores + (self.scale.to(scores.dtype)[None, :, None] * torch.log(1.0 + c[:, :heads])).sum(dim=1)
        if self.item is not None:
            out = out + torch.clamp(c[:, heads], max=1.0) * self.item.weight[:, 0].to(scores.dtype)
        return out


def _tie(head: nn.Linear, items: nn.Embedding, std: float) -> None:
    """Output layer = item embedding, small init (N(0, std), padding row 0, bias 0)."""
    nn.init.normal_(items.weight, std=std)
    with torch.no_grad():
        items.weight[0].zero_()
    head.weight = items.weight
    nn.init.zeros_(head.bias)


class CenteredLinear(nn.Linear):
    """Linear whose weight rows are centred on their mean row: y = x · (W_b - mean_b' W_b') + c_b.

    For a tied item table the rows are mostly one shared direction (the trained student's rows:
    mean-row norm 1.43, centred rows 0.21), so u · E_b carries a per-user constant (about 72 +- 10
    on real histories) that softmax, KD and every ranking ignore but int8 rounding does not: the
    error of a per-row int8 weight scales with the whole row, and on that scale the 10th and 11th
    items lie about 0.06 apart. Dropping the constant changes no ranking and no training gradient
    (softmax gradients sum to zero over the items) and cuts the int8 score error about 7x. The mean
    is taken in the graph, on the parameter, so exporters fold it into one constant weight."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight - self.weight.mean(dim=0, keepdim=True), self.bias)


class _Block(nn.Module):
    """Pre-norm transformer block: causal self-attention + point-wise feed-forward (SASRec §III-B)."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, dim))
        self.drop = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, k, d = x.shape
        q, key, v = self.qkv(self.norm1(x)).view(b, k, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, key, v, attn_mask=bias, dropout_p=p)  # (b, h, k, d/h)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, k, d)))
        return x + self.drop(self.ffn(self.norm2(x)))


class SASRecEncoder(nn.Module):
    """Item + learned position embeddings, causal blocks, final norm; returns the last position's
    state (B, dim), which with left padding is the state after the most recent purchase."""

    def __init__(self, num_items: int, max_len: int, dim: int, heads: int, layers: int, dropout: float,
                 scale: bool = True) -> None:
        super().__init__()
        self.scale = dim**0.5 if scale else 1.0
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.items = nn.Embedding(num_items, dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, heads, 2 * dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        causal = torch.triu(torch.full((max_len, max_len), NEG), diagonal=1)
        self.register_buffer("causal", causal, persistent=False)
        self.register_buffer("pos_ids", torch.arange(max_len), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        keep = (ids != 0).to(self.items.weight.dtype)  # (B, K) 1 for real items
        x = (self.items(ids) * self.scale + self.positions(self.pos_ids)) * keep[..., None]
        x = self.drop(x)
        # (B, 1, K, K): causal mask plus "never attend to a padded key".
        bias = self.causal[None, None] + ((1.0 - keep) * NEG)[:, None, None, :]
        for block in self.blocks:
            x = block(x, bias)
        return self.norm(x[:, -1])


class Transition(nn.Module):
    """Server-only width: a full item-to-item table M (items x items, zero init), score(b) +=
    Σ_j v_j M[h_j, b] with learned slot weights v. It can learn every co-occurrence count the
    baselines use, exactly; at 3,105 items it holds 9.6 M numbers (38 MB), far past a phone's
    budget, so only the teacher has it (privileged capacity, Lopez-Paz et al. 2016)."""

    def __init__(self, num_items: int, max_len: int) -> None:
        super().__init__()
        self.table = nn.EmbeddingBag(num_items, num_items, mode="sum", padding_idx=0)
        nn.init.zeros_(self.table.weight)
        self.slot = nn.Parameter(torch.ones(max_len))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids, per_sample_weights=self.slot.expand(ids.shape[0], -1).contiguous())


def text_similarity(item_text: tuple[str, ...] | list[str], min_items: int = 2, max_items: int = 300) -> torch.Tensor:
    """(items, items) cosine similarity of the items' TF-IDF word vectors, diagonal 0.

    Words (scikit-learn's CountVectorizer, binary): runs of 3+ letters, case-folded; a word counts
    if 2-300 items use it (a word of one item links nothing, a word of hundreds, like SET or BAG,
    links everything), weighted by log(items / items using it). Items with no such word are
    similar to nothing."""
    from sklearn.feature_extraction.text import CountVectorizer

    n = len(item_text)
    try:
        counts = CountVectorizer(token_pattern=r"[a-z]{3,}", binary=True, min_df=min_items,
                                 max_df=max_items).fit_transform(item_text)
    except ValueError:  # no word is shared by enough items
        return torch.zeros(n, n)
    df = torch.from_numpy(counts.sum(axis=0).A1.astype("float32"))
    x = torch.from_numpy(counts.toarray().astype("float32")) * torch.log(n / df)
    x = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
    sim = x @ x.T
    sim.fill_diagonal_(0.0)
    return sim


class TextPath(nn.Module):
    """Server-only item text: score(b) += Σ_j v_j S[h_j, b], S the fixed TF-IDF cosine similarity of
    the product descriptions (`text_similarity`), v learned slot weights over the last few lines.
    Items of one product line share words (RED RETROSPOT, JUMBO BAG): on the full Online Retail
    data, ranking new items by S over the last 10 lines alone scores validation new-item NDCG@10
    0.052 (co-occurrence 0.070, the two in a weighted sum 0.080). S is rebuilt from the dataset's
    `item_text` at every build (not a parameter, not in the checkpoint); 9.6 M numbers at 3,105
    items, so it is a teacher's input, not a phone's."""

    def __init__(self, item_text: tuple[str, ...], max_len: int) -> None:
        super().__init__()
        self.register_buffer("table", text_similarity(item_text), persistent=False)
        self.slot = nn.Parameter(torch.full((max_len,), 0.5))

    def forward(self, ids: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        """history (B, L) ids: items in it get no text score (their order is the re-buy path's)."""
        weights = self.slot.to(self.table.dtype).expand(ids.shape[0], -1).contiguous()
        out = F.embedding_bag(ids, self.table, per_sample_weights=weights, mode="sum", padding_idx=0)
        if history is None:
            return out
        seen = torch.zeros_like(out).scatter(1, history, 1.0)
        return out * (1.0 - seen)


class SASRecTeacher(nn.Module):
    """SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018) with a
    full-catalogue softmax head, trained with cross-entropy over the next invoice, plus the re-buy
    path and (optionally) the item-to-item `Transition` table."""

    def __init__(self, num_items: int, max_len: int = 50, dim: int = 64, heads: int = 2, layers: int = 2,
                 dropout: float = 0.2, tied: bool = True, rebuy: str | None = "scatter",
                 transition: bool = False) -> None:
        super().__init__()
        self.encoder = SASRecEncoder(num_items, max_len, dim, heads, layers, dropout, scale=not tied)
        self.head = nn.Linear(dim, num_items)
        if tied:
            _tie(self.head, self.encoder.items, INIT_STD)
            nn.init.normal_(self.encoder.positions.weight, std=INIT_STD)
        self.rebuy = RebuyPath(num_items, max_len, rebuy) if rebuy else None
        self.transition = Transition(num_items, max_len) if transition else None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        scores = self.head(self.encoder(ids))
        if self.transition is not None:
            scores = scores + self.transition(ids)
        return scores if self.rebuy is None else self.rebuy(ids, scores)


class PoolEncoder(nn.Module):
    """Item embeddings averaged over the real (non-padding) positions with learned per-position
    weights (so recency can matter), then a small MLP. Empty history -> the MLP of zeros."""

    def __init__(self, num_items: int, max_len: int, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.items = nn.Embedding(num_items, dim, padding_idx=0)
        self.position_weight = nn.Parameter(torch.ones(max_len))
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        keep = (ids != 0).to(self.items.weight.dtype) * self.position_weight  # (B, K)
        pooled = (self.items(ids) * keep[..., None]).sum(dim=1) / keep.abs().sum(dim=1, keepdim=True).clamp(min=1.0)
        return self.mlp(pooled)


class RecStudent(nn.Module):
    """Embedding + masked weighted mean-pool + MLP + tied linear head + re-buy path: only ops every
    mobile runtime runs fast (gather, mul, sum, matmul, scatter-add or equality, log): 56,550
    parameters at dim 16, K = 100 and the real catalogue (log-count re-buy path).

    pool_len / transition_len: the embedding pool and the `Transition` table read only the last that
    many ids (a teacher fed a 2,000-line history pools its recent part; the re-buy path reads all)."""

    def __init__(self, num_items: int, max_len: int = 50, dim: int = 16, tied: bool = True,
                 rebuy: str | None = "scatter", dropout: float = 0.0, transition: bool = False,
                 center: bool = False, rebuy_counts: str = "linear", pool_len: int | None = None,
                 transition_len: int | None = None, rebuy_heads: int = 2,
                 item_text: tuple[str, ...] | None = None, text_len: int = 10, text_new_only: bool = False) -> None:
        super().__init__()
        self.pool_len = min(pool_len or max_len, max_len)
        self.transition_len = min(transition_len or max_len, max_len)
        self.encoder = PoolEncoder(num_items, self.pool_len, dim, dropout)
        self.head = (CenteredLinear if center else nn.Linear)(dim, num_items)  # center: see CenteredLinear
        if tied:
            _tie(self.head, self.encoder.items, INIT_STD)
        self.rebuy = RebuyPath(num_items, max_len, rebuy, counts=rebuy_counts, heads=rebuy_heads) if rebuy else None
        self.transition = Transition(num_items, self.transition_len) if transition else None
        self.text_len = min(text_len, max_len)
        if item_text is not None and len(item_text) != num_items:
            raise ValueError(f"item_text has {len(item_text)} texts for {num_items} items")
        self.text = TextPath(tuple(item_text), self.text_len) if item_text is not None else None
        self.text_new_only = text_new_only

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        scores = self.head(self.encoder(_last(ids, self.pool_len)))
        if self.transition is not None:
            scores = scores + self.transition(_last(ids, self.transition_len))
        if self.text is not None:
            scores = scores + self.text(_last(ids, self.text_len), ids if self.text_new_only else None)
        return scores if self.rebuy is None else self.rebuy(ids, scores)


def _last(ids: torch.Tensor, n: int) -> torch.Tensor:
    """The last n history slots; the tensor itself when that is all of it (a full slice becomes an
    `alias` node that coremltools cannot convert). Static at export: the branch is on the shape."""
    return ids if n >= ids.shape[1] else ids[:, ids.shape[1] - n :]


class TopKHead(nn.Module):
    """Optional app-side wrapper: (scores (B, k), ids (B, k)) of the k best items, padding and
    unknown excluded. The project's model contract is one output tensor, so this is not the
    default export; it is for apps that want the ranking done in the model."""

    def __init__(self, model: nn.Module, k: int, exclude_ids: tuple[int, ...]) -> None:
        """exclude_ids: the dataset's never-ranked ids (DatasetInfo.postprocessing['exclude_ids'])."""
        super().__init__()
        self.model = model
        self.k = k
        num_items = model.head.out_features
        mask = torch.zeros(num_items)
        mask[list(exclude_ids)] = NEG * 1e4  # far below any real logit, still finite in float32
        self.register_buffer("exclude", mask, persistent=False)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.topk(self.model(ids) + self.exclude, self.k, dim=-1)


def build_sasrec_teacher(num_outputs: int, *, max_len: int = 50, dim: int = 64, heads: int = 2,
                         layers: int = 2, dropout: float = 0.2, tied: bool = True, rebuy: str | None = "scatter",
                         transition: bool = False) -> SASRecTeacher:
    """Builder used by pipelines: num_outputs is the catalogue size (DatasetInfo.num_outputs)."""
    return SASRecTeacher(num_outputs, max_len=max_len, dim=dim, heads=heads, layers=layers, dropout=dropout,
                         tied=tied, rebuy=rebuy, transition=transition)


def build_rec_teacher(num_outputs: int, *, max_len: int = 50, dim: int = 128, dropout: float = 0.2,
                      transition: bool = True, rebuy: str | None = "scatter", rebuy_counts: str = "linear",
                      pool_len: int | None = None, transition_len: int | None = None,
                      rebuy_heads: int = 2, text: bool = False, text_len: int = 10, text_new_only: bool = False,
                      item_text: tuple[str, ...] | None = None) -> RecStudent:
    """The server's pooled teacher: wide (dim 128), dropout, the re-buy path and the item-to-item
    `Transition` table no phone could hold (9.6 M numbers at 3,105 items). Fed the privileged long
    history (`teacher.inputs: [long_items]`), `rebuy_counts: log` counts every earlier line while
    the pool and the table read the last `pool_len` / `transition_len`."""
    return RecStudent(num_outputs, max_len=max_len, dim=dim, rebuy=rebuy, dropout=dropout, transition=transition,
                      rebuy_counts=rebuy_counts, pool_len=pool_len, transition_len=transition_len,
                      rebuy_heads=rebuy_heads, text_len=text_len, item_text=_text_for(text, item_text),
                      text_new_only=text_new_only)


def _text_for(text: bool, item_text: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if text and not item_text:
        raise ValueError("text: true needs item texts, and this dataset has none (DatasetInfo.item_text)")
    return tuple(item_text) if text and item_text else None


def build_rec_student(num_outputs: int, *, max_len: int = 50, dim: int = 16, tied: bool = True,
                      rebuy: str | None = "scatter", dropout: float = 0.0, center: bool = False,
                      rebuy_counts: str = "linear") -> RecStudent:
    """Builder used by pipelines: num_outputs is the catalogue size (DatasetInfo.num_outputs).
    center: score with the item rows centred (`CenteredLinear`): same rankings, int8-robust.
    rebuy_counts: "log" scores history items by log(1 + recency-weighted count) (`RebuyPath`)."""
    return RecStudent(num_outputs, max_len=max_len, dim=dim, tied=tied, rebuy=rebuy, dropout=dropout,
                      center=center, rebuy_counts=rebuy_counts)
