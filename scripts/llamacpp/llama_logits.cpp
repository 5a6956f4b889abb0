// Logits of a token stream from llama.cpp, for scripts/llamacpp/check_logits.sh: it checks that
// the GGUF written by dsv4_to_gguf.py runs the same model in llama.cpp as the checkpoint does in
// dsv4, before the two engines' speeds are compared.
//
//   llama_logits MODEL.gguf TOKENS(comma-separated) OUT.f32
//
// Decodes all tokens in one batch (no BOS added) and writes the logits of every position as
// float32, row-major [n_tokens][n_vocab]. Built against llama.cpp's libllama (llama.h).
#include <llama.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char ** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s MODEL.gguf TOKENS OUT.f32\n", argv[0]);
        return 2;
    }
    std::vector<llama_token> tokens;
    std::stringstream list(argv[2]);
    for (std::string item; std::getline(list, item, ',');) {
        tokens.push_back(static_cast<llama_token>(std::stol(item)));
    }
    if (tokens.empty()) {
        std::fprintf(stderr, "error: no tokens given\n");
        return 2;
    }

    llama_backend_init();
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (model == nullptr) {
        std::fprintf(stderr, "error: cannot load %s\n", argv[1]);
        return 1;
    }
    const int n = static_cast<int>(tokens.size());
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = static_cast<uint32_t>(n < 256 ? 256 : n);
    cp.n_batch = cp.n_ctx;
    cp.n_ubatch = cp.n_ctx;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (ctx == nullptr) {
        std::fprintf(stderr, "error: cannot create a context\n");
        return 1;
    }

    llama_batch batch = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; ++i) {
        batch.token[i] = tokens[static_cast<size_t>(i)];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n;
    if (llama_decode(ctx, batch) != 0) {
        std::fprintf(stderr, "error: llama_decode failed\n");
        return 1;
    }

    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::FILE * out = std::fopen(argv[3], "wb");
    if (out == nullptr) {
        std::fprintf(stderr, "error: cannot write %s\n", argv[3]);
        return 1;
    }
    for (int i = 0; i < n; ++i) {
        std::fwrite(llama_get_logits_ith(ctx, i), sizeof(float), static_cast<size_t>(n_vocab), out);
    }
    std::fclose(out);
    std::printf("%d tokens x %d logits -> %s\n", n, n_vocab, argv[3]);

    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
