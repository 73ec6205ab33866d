// Model architecture read from a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace focus {

enum class RopeScaling { None, Linear, Llama3 };

struct ModelConfig {
  int vocab_size = 0;
  int hidden_size = 0;        // dim
  int intermediate_size = 0;  // MLP hidden
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;           // hidden_size / n_heads unless config says otherwise
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling = RopeScaling::None;
  double rope_factor = 1.0;                 // linear and llama3
  double rope_low_freq_factor = 1.0;        // llama3
  double rope_high_freq_factor = 4.0;       // llama3
  double rope_original_max_pos = 8192.0;    // llama3
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  int bos_token_id = 1;
  std::vector<int> eos_token_ids;
  int max_position_embeddings = 0;
  // Candidate projections named in beacon_param ("q", "k", "v", "o", "mlp");
  // has_beacon_param false when config.json does not carry the field.
  bool has_beacon_param = false;
  std::vector<std::string> beacon_param;
  std::string torch_dtype;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  bool beacon_listed(const std::string& p) const;

  // Rotary inverse frequencies (head_dim / 2 of them), scaling applied, in
  // double: angles at positions of 100K+ need more than float precision.
  std::vector<double> rope_inv_freq() const;
};

// Reads and validates DIR/config.json; errors name the file and the field.
ModelConfig load_config(const std::string& dir);
ModelConfig parse_config(const std::string& text, const std::string& where);

}  // namespace focus
