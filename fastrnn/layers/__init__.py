"""Layers: recurrent (RNN, LSTM, GRU and their cells) and the feed-forward pieces models need."""
