"""The intelligence layer: anomaly detection, health forecasts, embeddings and memory.

Heavy dependencies (onnxruntime, numpy) are imported only when a model is used, so importing
this package stays cheap.
"""
