"""
A scikit-learn estimator in a pipeline and a grid search
========================================================

:class:`fastfc.sklearn.FCClassifier` is a scikit-learn classifier (``fit``,
``predict``, ``predict_proba``, ``score``, ``get_params`` / ``set_params``) that trains
a :class:`fastfc.Net <fastfc.net.Net>`, so it goes wherever a scikit-learn estimator
goes.  Here it follows a :class:`~sklearn.preprocessing.StandardScaler` in a pipeline,
and :class:`~sklearn.model_selection.GridSearchCV` picks its width and L2 strength by
3-fold cross-validation on the digits.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastfc.sklearn import FCClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

pipe = make_pipeline(StandardScaler(), FCClassifier(random_state=0))
search = GridSearchCV(pipe, {"fcclassifier__hidden_dims": [(32,), (128,)],
                             "fcclassifier__reg": [1e-4, 1e-2]}, cv=3)
search.fit(X_train, y_train)

for params, mean, std in zip(search.cv_results_["params"],
                             search.cv_results_["mean_test_score"],
                             search.cv_results_["std_test_score"]):
    print(f"{params}: {mean:.3f} +- {std:.3f}")
print("best:", search.best_params_)
print(f"test accuracy of the refitted best pipeline: {search.score(X_test, y_test):.3f}")

# %%
# The fitted network and its training record are attributes of the estimator, named
# with a trailing underscore as in scikit-learn.

clf = search.best_estimator_[-1]
print("classes_:", clf.classes_)
print("epochs run:", clf.n_iter_, " steps:", clf.t_)
print("loss of the last epochs:", np.round(clf.loss_curve_[-5:], 4))
print("the net:", clf.net_)
