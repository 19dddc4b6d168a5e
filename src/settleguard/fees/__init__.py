"""Fee audit (费率稽核, issue 22 item 4): every transaction's fee recomputed from the contract in force on its
business day, differences per merchant to the fen, and rate changes without a contract behind them."""
