"""Nothing lost: one harness per repository (`lock`), the attempt's journal (`journal`), recovery after a
crash (`recovery`), evidence folders sealed by SHA256SUMS (`evidence`), and pushes that never publish an
unproven commit (`push`)."""
