"""fastfc"""
